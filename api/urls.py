from django.urls import path

from api import account_views
from api.api import api

urlpatterns = [
    path("api/v1/", api.urls),
    path("account/tokens/", account_views.token_list, name="api-tokens"),
    path("account/tokens/<int:token_id>/revoke/", account_views.token_revoke, name="api-token-revoke"),
]
