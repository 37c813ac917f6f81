"""The one routing table."""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from torreya.accounts import views as accounts
from torreya.api import accounts as api_accounts
from torreya.api import boards as api_boards
from torreya.api import cases as api_cases
from torreya.api import checkins as api_checkins
from torreya.api import community as api_community
from torreya.api import hours as api_hours
from torreya.api import households as api_households
from torreya.api import integrity as api_integrity
from torreya.api import notifications as api_notifications
from torreya.api import openapi as api_openapi
from torreya.api import patrols as api_patrols
from torreya.api import rewards as api_rewards
from torreya.api import trust as api_trust
from torreya.api import webhooks as api_webhooks
from torreya.api.registry import ApiRouter
from torreya.boards import views as boards
from torreya.checkins import offline_views
from torreya.checkins import views as checkins
from torreya.console import residents
from torreya.console import views as console
from torreya.hours import views as hours
from torreya.households import passbook
from torreya.households import views as households
from torreya.integrity import views as integrity
from torreya.ledger import views as ledger
from torreya.notifications import views as notifications
from torreya.ops import health
from torreya.outbox import views as outbox
from torreya.patrols import views as patrols
from torreya.pledges import views as pledges
from torreya.reports import views as reports
from torreya.rewards import views as rewards
from torreya.settings import resource_dir
from torreya.signin import family_views
from torreya.signin import views as signin
from torreya.trust import views as trust_views

# The API's endpoints, each module's list in turn (the OpenAPI document follows this order).
API = (*api_accounts.api, *api_boards.api, *api_cases.api, *api_checkins.api,
       *api_community.api,
       *api_households.api, *api_hours.api, *api_integrity.api,
       *api_notifications.api, *api_openapi.api, *api_patrols.api, *api_rewards.api,
       *api_trust.api, *api_webhooks.api)


def build_routes() -> list[BaseRoute]:
    return [
        *health.routes,
        Mount("/api/v1", app=ApiRouter(API), name="api"),
        Mount("/static", app=StaticFiles(directory=str(resource_dir("static"))), name="static"),
        *rewards.routes,
        *pledges.routes,
        *reports.routes,
        *patrols.routes,
        *boards.routes,
        *outbox.routes,
        *notifications.routes,
        *signin.routes,
        *family_views.routes,
        *trust_views.routes,
        *residents.routes,
        *integrity.routes,
        *households.routes,
        *hours.routes,
        *passbook.routes,
        Mount("/console", routes=console.routes, name="console"),
        *ledger.routes,
        *offline_views.routes,
        *checkins.routes,
        *accounts.routes,
    ]
