"""Legacy records -> Shopify objects: products (``productSet``), customers (``customerSet``), stock.

Creates and updates go through the ``*Set`` upserts keyed by a ``customId``
identifier (namespace ``bridgehead``, key ``legacy_key``) until the remote id is
known, so a write whose answer was lost is repeated as an update, never a second
product. Several upserts share one request through GraphQL aliases. Stock goes
through ``inventorySetQuantities`` with ``changeFromQuantity`` (compare-and-set)
and an ``@idempotent`` key; a stale quantity is re-read and the batch resent.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import msgspec

from sync.connectors.base import OutRecord, PushResult
from sync.connectors.shopify.errors import CostExceeded, user_error
from sync.exceptions import Deferred, Fatal, Skippable, SyncError

if TYPE_CHECKING:
    from sync.connectors.shopify.client import ShopifyClient

__all__ = ("NAMESPACE", "ShopifyConnector")

NAMESPACE, KEY = "bridgehead", "legacy_key"
_ERRORS = "userErrors { field message code }"
_PRODUCT = "product { id updatedAt variants(first: 1) { nodes { id inventoryItem { id } } } }"
_CUSTOMER = "customer { id updatedAt }"
_FETCH = {
    "product": "... on Product { id title status vendor productType descriptionHtml tags updatedAt }",
    "customer": "... on Customer { id firstName lastName email phone note tags updatedAt }",
}
_INT_LIMIT = 2**31
"""GraphQL ``Int`` is a signed 32-bit integer."""
_PER_REQUEST = 10
"""Aliased upserts per request: 100 points, a tenth of the Standard bucket."""


class ShopifyConnector:
    def __init__(
        self,
        client: ShopifyClient,
        kind: Literal["product", "customer", "inventory"],
        *,
        on_delete: Literal["delete", "archive"] = "delete",
    ) -> None:
        self.client, self.kind, self.on_delete = client, kind, on_delete
        self.max_batch = 250 if kind == "inventory" else _PER_REQUEST
        self._locations: dict[str, str] | None = None

    # -- products and customers --------------------------------------------------------------

    def push(self, records: list[OutRecord]) -> list[PushResult]:
        if self.kind == "inventory":
            results = self._push_stock(records)
        else:
            results = []
            for start in range(0, len(records), _PER_REQUEST):
                results.extend(self._push_objects(records[start : start + _PER_REQUEST]))
        # A code the table calls fatal stops the run, even when it came back on one record.
        if fatal := next((r.error for r in results if isinstance(r.error, Fatal)), None):
            raise fatal
        return results

    def _push_objects(self, records: list[OutRecord]) -> list[PushResult]:
        parts, decl = [], []
        variables: dict[str, Any] = {}
        for i, rec in enumerate(records):
            if rec.op == "delete" and not (self.kind == "product" and self.on_delete == "archive"):
                name = "productDelete" if self.kind == "product" else "customerDelete"
                out = "deletedProductId" if self.kind == "product" else "deletedCustomerId"
                decl.append(f"$d{i}: {name[0].upper()}{name[1:]}Input!")
                parts.append(f"r{i}: {name}(input: $d{i}) {{ {out} {_ERRORS} }}")
                variables[f"d{i}"] = {"id": rec.remote_id}
                continue
            values = {"status": "ARCHIVED"} if rec.op == "delete" else rec.values
            ident = (
                {"id": rec.remote_id}
                if rec.remote_id
                else {"customId": {"namespace": NAMESPACE, "key": KEY, "value": rec.key}}
            )
            if self.kind == "product":
                decl.append(f"$i{i}: ProductSetInput!, $k{i}: ProductSetIdentifiers")
                parts.append(
                    f"r{i}: productSet(identifier: $k{i}, input: $i{i}, synchronous: true) {{ {_PRODUCT} {_ERRORS} }}"
                )
                variables[f"i{i}"] = _product_input(values, rec.op == "create")
            else:
                decl.append(f"$i{i}: CustomerSetInput!, $k{i}: CustomerSetIdentifiers")
                parts.append(f"r{i}: customerSet(identifier: $k{i}, input: $i{i}) {{ {_CUSTOMER} {_ERRORS} }}")
                variables[f"i{i}"] = _customer_input(values)
            variables[f"k{i}"] = ident
        query = f"mutation Push({', '.join(decl)}) {{ {' '.join(parts)} }}"
        data = self.client.execute(query, variables, cost=10 * len(records))
        results = []
        retry_lost = []
        for i, rec in enumerate(records):
            payload = data.get(f"r{i}") or {}
            errors = payload.get("userErrors") or []
            # This record's part of the request and of the answer, kept with its outcome (console run detail).
            trace: dict[str, Any] = {
                "request": {
                    name: variables[k]
                    for name, k in (("delete", f"d{i}"), ("input", f"i{i}"), ("identifier", f"k{i}"))
                    if k in variables
                },
                "answer": payload,
            }
            if rec.op == "delete":
                gone = any(e.get("code") == "NOT_FOUND" for e in errors)  # already gone: the goal is met
                results.append(PushResult(rec.key, error=None if gone or not errors else _user_error(errors), **trace))
                continue
            if errors and rec.remote_id and any(e.get("code") == "NOT_FOUND" for e in errors):
                retry_lost.append(OutRecord(rec.key, "create", rec.values))  # deleted in the shop: recreate
                continue
            if errors:
                results.append(PushResult(rec.key, error=_user_error(errors), **trace))
                continue
            obj = payload.get(self.kind) or {}
            extra: dict[str, Any] = {"updatedAt": obj.get("updatedAt")}
            variants = ((obj.get("variants") or {}).get("nodes")) or []
            if variants:
                extra["variant_id"] = variants[0]["id"]
                extra["inventory_item_id"] = variants[0]["inventoryItem"]["id"]
            results.append(PushResult(rec.key, remote_id=obj.get("id"), extra=extra, **trace))
        if retry_lost:
            results.extend(self._push_objects(retry_lost))
        return results

    def fetch(self, remote_ids: list[str]) -> dict[str, dict[str, Any]]:
        if not remote_ids or self.kind == "inventory":
            return {}
        query = f"query Fetch($ids: [ID!]!) {{ nodes(ids: $ids) {{ {_FETCH[self.kind]} }} }}"
        found: dict[str, dict[str, Any]] = {}

        def read(chunk: list[str]) -> None:
            data = self.client.execute(query, {"ids": chunk}, cost=len(chunk))
            found.update({n["id"]: n for n in data.get("nodes") or [] if n})

        _in_pieces(remote_ids, read)
        return found

    # -- stock -------------------------------------------------------------------------------

    def locations(self) -> dict[str, str]:
        """Location name (the legacy warehouse code) -> location GID, read once with cursor pagination."""
        if self._locations is None:
            found, after = {}, None
            while True:
                query = (
                    "query L($after: String) { locations(first: 250, after: $after) "
                    "{ nodes { id name } pageInfo { hasNextPage endCursor } } }"
                )
                page = self.client.execute(query, {"after": after}, cost=252)["locations"]
                found.update({n["name"]: n["id"] for n in page["nodes"]})
                if not page["pageInfo"]["hasNextPage"]:
                    break
                after = page["pageInfo"]["endCursor"]
            self._locations = found
        return self._locations

    def _push_stock(self, records: list[OutRecord]) -> list[PushResult]:
        results: dict[str, PushResult] = {}
        pending: list[tuple[OutRecord, str, str, int]] = []
        locations = self.locations()
        for rec in records:
            item, location = rec.values.get("inventoryItemId"), locations.get(str(rec.values.get("location")))
            if not item:
                results[rec.key] = PushResult(rec.key, error=Deferred("the item has not reached the shop yet"))
            elif not location:
                results[rec.key] = PushResult(
                    rec.key, error=Skippable(f"no shop location named {rec.values.get('location')!r}")
                )
            else:
                raw = 0 if rec.op == "delete" else rec.values.get("quantity") or 0
                try:
                    quantity = Decimal(str(raw))
                except InvalidOperation:
                    quantity = Decimal("NaN")
                if not quantity.is_finite() or abs(quantity) >= _INT_LIMIT:
                    # GraphQL's Int is 32-bit: one such value in the batch would fail the whole request.
                    results[rec.key] = PushResult(rec.key, error=Skippable(
                        f"quantity {raw!r} is not a number Shopify can store", code="INVALID_QUANTITY"))  # fmt: skip
                    continue
                if quantity != quantity.to_integral_value():
                    # Shopify counts whole units. Truncating here once hid 4,978 fractional demo rows:
                    # the mapping must say how to round (``rounding:`` on the field, docs/sync.md).
                    results[rec.key] = PushResult(rec.key, error=Skippable(
                        f"quantity {raw} is not a whole number: declare rounding (floor, ceil or round_half_even) "
                        "on the sync's quantity field", code="FRACTIONAL_QUANTITY"))  # fmt: skip
                    continue
                pending.append((rec, item, location, int(quantity)))
        known = {(i, loc): rec.extra.get("quantity") for rec, i, loc, _ in pending if rec.extra.get("item") == i}
        for _round in range(4):
            if not pending:
                break
            unknown = [(i, loc) for _, i, loc, _ in pending if known.get((i, loc)) is None]
            known.update(self._read_quantities(unknown))
            quantities = [{"inventoryItemId": i, "locationId": loc, "quantity": q,
                           "changeFromQuantity": known.get((i, loc))}
                          for _, i, loc, q in pending]  # fmt: skip
            # One key per real send: the outbox items and versions being delivered (``send_id``) and
            # the exact parameters. A request-level retry after a lost answer repeats this very
            # request and replays the first result; a later, genuinely new change (3 -> 7 again
            # after 7 -> 3) has other send ids and so a new key. Hashing the quantities alone made
            # that second 3 -> 7 replay the first answer and change nothing in the shop.
            sends = sorted(rec.send_id or rec.key for rec, *_ in pending)
            key = hashlib.sha256(msgspec.json.encode([sends, quantities])).hexdigest()[:32]
            query = (
                "mutation Set($input: InventorySetQuantitiesInput!) { inventorySetQuantities(input: $input) "
                f'@idempotent(key: "{key}") {{ inventoryAdjustmentGroup {{ id }} {_ERRORS} }} }}'
            )
            payload = {"name": "available", "reason": "correction", "quantities": quantities}
            data = self.client.execute(query, {"input": payload}, cost=10)["inventorySetQuantities"]
            errors = data.get("userErrors") or []
            sent = {rec.key: quantities[n] for n, (rec, *_) in enumerate(pending)}
            if not errors:
                for rec, i, loc, q in pending:
                    results[rec.key] = PushResult(
                        rec.key, remote_id=f"{i}|{loc}", extra={"item": i, "location": loc, "quantity": q},
                        request=sent[rec.key], answer=data,
                    )  # fmt: skip
                break
            stale: set[int] = set()
            for e in errors:
                field = e.get("field") or []
                index = int(field[2]) if len(field) > 2 and field[2].isdigit() else None
                if index is None:
                    # A refusal of the whole request: the table says whether that is our bug or transient.
                    error = user_error(e.get("code"), ".".join(field), str(e.get("message")))
                    if isinstance(error, Fatal):
                        raise Fatal(f"inventorySetQuantities refused the batch: {error}")
                    for rec, *_ in pending:
                        results.setdefault(rec.key, PushResult(rec.key, error=error))
                elif e.get("code") in ("CHANGE_FROM_QUANTITY_STALE", "COMPARE_QUANTITY_STALE"):
                    stale.add(index)
                else:
                    rec = pending[index][0]
                    results[rec.key] = PushResult(rec.key, error=_user_error([e]), request=sent[rec.key], answer=e)
            for index in stale:  # someone else moved the stock: read again, the legacy quantity still wins
                known[(pending[index][1], pending[index][2])] = None
            pending = [p for p in pending if p[0].key not in results]
        else:
            for rec, *_ in pending:
                results[rec.key] = PushResult(
                    rec.key, error=Skippable("stock kept changing under us", code="CHANGE_FROM_QUANTITY_STALE")
                )
        return [results[r.key] for r in records]

    def _read_quantities(self, slots: list[tuple[str, str]]) -> dict[tuple[str, str], int | None]:
        found: dict[tuple[str, str], int | None] = {}

        def read(chunk: list[tuple[str, str]]) -> None:
            fields = " ".join(
                f'q{n}: inventoryItem(id: "{i}") {{ inventoryLevel(locationId: "{loc}") '
                '{ quantities(names: ["available"]) { quantity } } }'
                for n, (i, loc) in enumerate(chunk)
            )
            # 3 points a slot: the item, its level, the quantities list (objects cost 1 each).
            data = self.client.execute(f"query Q {{ {fields} }}", cost=3 * len(chunk))
            for n, slot in enumerate(chunk):
                level = (data.get(f"q{n}") or {}).get("inventoryLevel")
                found[slot] = level["quantities"][0]["quantity"] if level else None

        _in_pieces(slots, read, 50)
        return found


def _product_input(values: dict[str, Any], creating: bool) -> dict[str, Any]:
    product = {k: v for k, v in values.items() if not k.startswith("variant.")}
    variant = {k.removeprefix("variant."): v for k, v in values.items() if k.startswith("variant.")}
    if "price" in variant and variant["price"] is not None:
        variant["price"] = str(variant["price"])
    if "tags" in product and isinstance(product["tags"], str):
        product["tags"] = _tags(product["tags"])
    # One variant per legacy item; the variants list is replaced as a whole, so it is always sent
    # (matched by its option value, the variant and its inventory item keep their ids).
    product["productOptions"] = [{"name": "Title", "values": [{"name": "Default Title"}]}]
    product["variants"] = [{"optionValues": [{"optionName": "Title", "name": "Default Title"}], **variant}]
    return product


def _customer_input(values: dict[str, Any]) -> dict[str, Any]:
    customer = dict(values)
    if isinstance(customer.get("tags"), str):
        # A template such as "legacy,{customer_id}" is a list of tags, as for products.
        customer["tags"] = _tags(customer["tags"])
    return customer


def _tags(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _user_error(errors: list[dict[str, Any]]) -> SyncError:
    first = errors[0]
    return user_error(first.get("code"), ".".join(first.get("field") or []), str(first.get("message")))


T = TypeVar("T")


def _in_pieces(items: list[T], read: Callable[[list[T]], None], size: int = 250) -> None:
    """Call ``read`` on chunks of ``items``; a chunk answered MAX_COST_EXCEEDED is halved and read again."""
    queue = [items[i : i + size] for i in range(0, len(items), size)]
    while queue:
        chunk = queue.pop(0)
        try:
            read(chunk)
        except CostExceeded as exc:
            if len(chunk) == 1:
                raise Fatal(f"one record's query is above Shopify's single-query cost limit: {exc}") from None
            half = len(chunk) // 2
            queue[:0] = [chunk[:half], chunk[half:]]
