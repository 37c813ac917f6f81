"""API: receipts and the towns' signed chain heads (public: anyone may check)."""

from __future__ import annotations

from starlette.requests import Request

from torreya.api.registry import Endpoints
from torreya.api.schema import Out, Time
from torreya.errors import NotFoundError
from torreya.models import Town, TownKey
from torreya.trust import receipts
from torreya.trust.signing import heads_of

api = Endpoints()  # this module's endpoints, in the order declared (routes.py)


class Link(Out):
    seq: int
    prev_hash: str
    digest: str
    hash: str


class SignedHead(Out):
    """What is signed, field for field (docs/trust.md), with the signature."""

    v: int
    town: int
    kind: str
    period: str
    seq: int
    entry_id: int
    hash: str
    total: int
    signed_at: Time
    public_key: str
    signature: str


class ListedHead(SignedHead):
    id: int


class Receipt(Out):
    code: str
    status: str
    delta: int
    kind: str
    created_at: Time
    resident: str
    village: str
    town_id: int
    link: Link | None
    path: list[str]
    signed_head: SignedHead | None


class TownKeyOut(Out):
    id: int
    public_key: str
    created_at: Time
    retired_at: Time | None


class SignedHeads(Out):
    town_id: int
    keys: list[TownKeyOut]
    items: list[ListedHead]


@api.endpoint("GET", "/receipts/{code}", auth=False, tag="trust",
              summary="A receipt: the entry (masked), its link, the path of hashes to the signed "
                      "head that covers it, and that head with its signature",
              summary_zh="积分凭证：明细（姓名遮挡）、哈希链位置和覆盖它的签名链头，谁都能核对",
              returns=Receipt, errors=["not_found"])
async def receipt(request: Request, body: None) -> object:
    found = await receipts.receipt(request.path_params["code"])
    if found is None:
        raise NotFoundError("This is not a receipt of ours. Check the code and try again.")
    return Receipt.model_validate(found)


@api.endpoint("GET", "/towns/{id:id}/signed-heads", auth=False, tag="trust",
              summary="The town's public keys and signed chain heads, newest first",
              summary_zh="镇的公钥和签名链头，最新的在前",
              returns=SignedHeads, errors=["not_found"])
async def signed_heads(request: Request, body: None) -> object:
    town = await Town.get_or_none(id=request.path_params["id"])
    if town is None:
        raise NotFoundError()
    keys = await TownKey.filter(town_id=town.id).order_by("id")
    return SignedHeads(town_id=town.id, items=await heads_of(town.id),
                       keys=[TownKeyOut(id=k.id, public_key=k.public_key,
                                        created_at=k.created_at, retired_at=k.retired_at)
                             for k in keys])
