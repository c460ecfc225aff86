"""The consultant's time page at /time/ on the experience tier: my assignments, log time for a day, my week with
its states (a rejected entry with its reason), submit the week, ask for a correction of approved time, and log
offline: entries wait in the browser and go through the offline batch endpoint once the network is back.

It holds no data and no secret: the consultant signs in with authorization code + PKCE (experience_apis/signin) and
the page calls mobile time v2 through the gateway with their own token, so every entry is theirs and nobody else's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from experience_apis.signin.pages import Page

TIME_PAGE: Final = Page(
    prefix="/time",
    static=Path(__file__).parent / "static",
    assets={"time.js": "text/javascript", "time.css": "text/css"},
    client_id=lambda settings: settings.time_client_id,
    scope=lambda settings: settings.time_scope,
    why_sign_in="the time you log here is yours and nobody else's.",
)
