"""API: receipts and the towns' signed chain heads (public: anyone may check)."""

from __future__ import annotations

from starlette.requests import Request

from torreya.api.registry import endpoint, json
from torreya.errors import NotFoundError
from torreya.models import Town, TownKey
from torreya.trust import receipts
from torreya.trust.signing import heads_of


@endpoint("GET", "/receipts/{code}", auth=False, tag="trust",
          summary="A receipt: the entry (masked), its link, the path of hashes to the signed "
                  "head that covers it, and that head with its signature",
          returns="code status delta:int kind created_at resident village town_id:int "
                  "link:obj? path:list signed_head:obj?",
          errors=["not_found"])
async def receipt(request: Request, body: dict) -> object:
    found = await receipts.receipt(request.path_params["code"])
    if found is None:
        raise NotFoundError("This is not a receipt of ours. Check the code and try again.")
    return json(found)


@endpoint("GET", "/towns/{id:id}/signed-heads", auth=False, tag="trust",
          summary="The town's public keys and signed chain heads, newest first",
          returns="town_id:int keys:list items:list", errors=["not_found"])
async def signed_heads(request: Request, body: dict) -> object:
    town = await Town.get_or_none(id=request.path_params["id"])
    if town is None:
        raise NotFoundError()
    keys = await TownKey.filter(town_id=town.id).order_by("id")
    return json({"town_id": town.id, "items": await heads_of(town.id),
                 "keys": [{"id": k.id, "public_key": k.public_key,
                           "created_at": k.created_at.isoformat(),
                           "retired_at": k.retired_at.isoformat() if k.retired_at else None}
                          for k in keys]})
