"""The account page's API tokens: create one (shown once), see when each was last used, revoke."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from api import tokens
from api.forms import TokenForm
from api.models import ApiToken
from reviews.permissions import AuthenticatedRequest


@login_required
@require_http_methods(["GET", "POST"])
def token_list(request: AuthenticatedRequest) -> HttpResponse:
    form = TokenForm(request.user, request.POST or None)
    context = {"form": form, "tokens": ApiToken.objects.filter(user=request.user).select_related("project")}
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                token, raw = tokens.create_token(request.user, **form.cleaned_data)
            except ValidationError as error:
                form.add_error(None, error)
            else:
                # Rendered, not redirected: the secret is never stored, so this response is the one chance to see it.
                context.update(new_token=token, secret=raw, form=TokenForm(request.user))
        if form.errors:
            status = 400
    return render(request, "api/tokens.html", context, status=status)


@login_required
@require_POST
def token_revoke(request: AuthenticatedRequest, token_id: int) -> HttpResponse:
    token = get_object_or_404(ApiToken, pk=token_id, user=request.user)
    tokens.revoke(token)
    messages.success(request, f"Token {token.name} revoked: it no longer works.")
    return redirect("api-tokens")
