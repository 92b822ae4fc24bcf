"""What the memory announces to the apps above it, which connect to these in their AppConfig.ready().

The memory never imports the apps that use it; they hear about its changes here.
"""

from django.dispatch import Signal

# Sent under the project's regeneration lock after new memory versions were written (sender: the Project;
# `versions`: the new MemoryVersions, oldest first). The regression gate (evaluation) answers with its check,
# whose `held` says whether it held the newest version back.
versions_written = Signal()
