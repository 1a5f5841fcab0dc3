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
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from sync.connectors.base import OutRecord, PushResult
from sync.exceptions import Deferred, Fatal, Skippable

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
            return self._push_stock(records)
        results: list[PushResult] = []
        for start in range(0, len(records), _PER_REQUEST):
            results.extend(self._push_objects(records[start : start + _PER_REQUEST]))
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
                variables[f"i{i}"] = dict(values)
            variables[f"k{i}"] = ident
        query = f"mutation Push({', '.join(decl)}) {{ {' '.join(parts)} }}"
        data = self.client.execute(query, variables, cost=10 * len(records))
        results = []
        retry_lost = []
        for i, rec in enumerate(records):
            payload = data.get(f"r{i}") or {}
            errors = payload.get("userErrors") or []
            if rec.op == "delete":
                gone = any(e.get("code") == "NOT_FOUND" for e in errors)  # already gone: the goal is met
                results.append(PushResult(rec.key, error=None if gone or not errors else _user_error(errors)))
                continue
            if errors and rec.remote_id and any(e.get("code") == "NOT_FOUND" for e in errors):
                retry_lost.append(OutRecord(rec.key, "create", rec.values))  # deleted in the shop: recreate
                continue
            if errors:
                results.append(PushResult(rec.key, error=_user_error(errors)))
                continue
            obj = payload.get(self.kind) or {}
            extra: dict[str, Any] = {"updatedAt": obj.get("updatedAt")}
            variants = ((obj.get("variants") or {}).get("nodes")) or []
            if variants:
                extra["variant_id"] = variants[0]["id"]
                extra["inventory_item_id"] = variants[0]["inventoryItem"]["id"]
            results.append(PushResult(rec.key, remote_id=obj.get("id"), extra=extra))
        if retry_lost:
            results.extend(self._push_objects(retry_lost))
        return results

    def fetch(self, remote_ids: list[str]) -> dict[str, dict[str, Any]]:
        if not remote_ids or self.kind == "inventory":
            return {}
        query = f"query Fetch($ids: [ID!]!) {{ nodes(ids: $ids) {{ {_FETCH[self.kind]} }} }}"
        data = self.client.execute(query, {"ids": remote_ids}, cost=len(remote_ids))
        return {n["id"]: n for n in data.get("nodes") or [] if n}

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
                quantity = 0 if rec.op == "delete" else int(Decimal(str(rec.values.get("quantity") or 0)))
                pending.append((rec, item, location, quantity))
        known = {(i, loc): rec.extra.get("quantity") for rec, i, loc, _ in pending if rec.extra.get("item") == i}
        for _round in range(4):
            if not pending:
                break
            unknown = [(i, loc) for _, i, loc, _ in pending if known.get((i, loc)) is None]
            known.update(self._read_quantities(unknown))
            quantities = [{"inventoryItemId": i, "locationId": loc, "quantity": q,
                           "changeFromQuantity": known.get((i, loc))}
                          for _, i, loc, q in pending]  # fmt: skip
            # Same batch, same key: a retry after a lost answer replays the first result instead of
            # failing the compare-and-set against the quantity it already set.
            key = hashlib.sha256(msgspec.json.encode(quantities)).hexdigest()[:32]
            query = (
                "mutation Set($input: InventorySetQuantitiesInput!) { inventorySetQuantities(input: $input) "
                f'@idempotent(key: "{key}") {{ inventoryAdjustmentGroup {{ id }} {_ERRORS} }} }}'
            )
            payload = {"name": "available", "reason": "correction", "quantities": quantities}
            data = self.client.execute(query, {"input": payload}, cost=10)["inventorySetQuantities"]
            errors = data.get("userErrors") or []
            if not errors:
                for rec, i, loc, q in pending:
                    results[rec.key] = PushResult(
                        rec.key, remote_id=f"{i}|{loc}", extra={"item": i, "location": loc, "quantity": q}
                    )
                break
            stale: set[int] = set()
            for e in errors:
                field = e.get("field") or []
                index = int(field[2]) if len(field) > 2 and field[2].isdigit() else None
                if index is None:
                    raise Fatal(f"inventorySetQuantities refused the batch: {e.get('message')}")
                if e.get("code") == "CHANGE_FROM_QUANTITY_STALE":
                    stale.add(index)
                else:
                    rec = pending[index][0]
                    results[rec.key] = PushResult(rec.key, error=_user_error([e]))
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
        for start in range(0, len(slots), 50):
            chunk = slots[start : start + 50]
            fields = " ".join(
                f'q{n}: inventoryItem(id: "{i}") {{ inventoryLevel(locationId: "{loc}") '
                '{ quantities(names: ["available"]) { quantity } } }'
                for n, (i, loc) in enumerate(chunk)
            )
            data = self.client.execute(f"query Q {{ {fields} }}", cost=len(chunk))
            for n, slot in enumerate(chunk):
                level = (data.get(f"q{n}") or {}).get("inventoryLevel")
                found[slot] = level["quantities"][0]["quantity"] if level else None
        return found


def _product_input(values: dict[str, Any], creating: bool) -> dict[str, Any]:
    product = {k: v for k, v in values.items() if not k.startswith("variant.")}
    variant = {k.removeprefix("variant."): v for k, v in values.items() if k.startswith("variant.")}
    if "price" in variant and variant["price"] is not None:
        variant["price"] = str(variant["price"])
    if "tags" in product and isinstance(product["tags"], str):
        product["tags"] = [t.strip() for t in product["tags"].split(",") if t.strip()]
    # One variant per legacy item; the variants list is replaced as a whole, so it is always sent
    # (matched by its option value, the variant and its inventory item keep their ids).
    product["productOptions"] = [{"name": "Title", "values": [{"name": "Default Title"}]}]
    product["variants"] = [{"optionValues": [{"optionName": "Title", "name": "Default Title"}], **variant}]
    return product


def _user_error(errors: list[dict[str, Any]]) -> Skippable:
    first = errors[0]
    field = ".".join(first.get("field") or [])
    return Skippable(f"{first.get('code')}: {field}: {first.get('message')}", code=first.get("code"))
