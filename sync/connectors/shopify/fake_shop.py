"""The fake shop's data and the semantics of each GraphQL field, as the notes describe them.

Resolvers for a ``graphql-core`` schema built from ``schema.graphql``: the root
object's methods answer top-level fields, nested objects are dicts whose callable
values take field arguments. Behaviour follows the documented API, not our
connector: ``productSet`` upserts by identifier and replaces list fields,
``customerSet`` leaves omitted fields alone and refuses a taken email,
``inventorySetQuantities`` requires ``changeFromQuantity`` (2026-04+) and applies
a batch atomically, ``@idempotent(key:)`` replays the first result.
"""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from graphql import GraphQLError, GraphQLResolveInfo, value_from_ast_untyped

from sync.connectors.shopify.fake_search import matches

__all__ = ("FakeShop",)

_STATUSES = frozenset({"ACTIVE", "ARCHIVED", "DRAFT"})
_REASONS = frozenset({"correction", "cycle_count_available", "received", "restock", "other", "shrinkage"})
_MAX_PAGE = 250
_QUANTITY_NAMES = frozenset({"available", "committed", "damaged", "incoming", "on_hand", "quality_control",
                             "reserved", "safety_stock"})  # fmt: skip


def _err(field: list[str | int], message: str, code: str) -> dict[str, Any]:
    return {"field": [str(f) for f in field], "message": message, "code": code}


def _page(items: list[dict[str, Any]], first: int | None, after: str | None) -> dict[str, Any]:
    if first is None or not 0 < first <= _MAX_PAGE:
        raise GraphQLError(f"first must be between 1 and {_MAX_PAGE}", extensions={"code": "BAD_REQUEST"})
    start = int(base64.b64decode(after).decode()) if after else 0
    chunk = items[start : start + first]
    end = start + len(chunk)
    cursor = base64.b64encode(str(end).encode()).decode()
    more = end < len(items)
    return {
        "nodes": chunk,
        "pageInfo": {"hasNextPage": more, "endCursor": cursor if chunk else None, "hasPreviousPage": start > 0,
                     "startCursor": after},
    }  # fmt: skip


class FakeShop:
    """In-memory shop state; not thread-safe by itself (``FakeShopify`` serialises requests)."""

    def __init__(self, api_version: str = "2026-04", locations: tuple[str, ...] = ("W01", "W02", "W03", "W05", "W07")):
        self.api_version = api_version
        self._ids = itertools.count(1001)
        self.products: dict[str, dict[str, Any]] = {}
        self.customers: dict[str, dict[str, Any]] = {}
        self.locations = {f"gid://shopify/Location/{i}": name for i, name in enumerate(locations, 1)}
        self.inventory: dict[tuple[str, str], int] = {}
        self.idempotent: dict[str, tuple[str, Any]] = {}
        """@idempotent key -> (the parameters first sent with it, the first result)."""
        self.replays = 0
        self.committed: dict[tuple[str, str], int] = {}
        """Units promised to open orders per slot; ``inventory`` holds *available*, on_hand = available + committed."""
        self.writes: list[tuple[str, str]] = []
        """(mutation, identifier) of every write applied, replays excluded: duplicate detection in tests."""
        self._tick = 0
        self._item_index: dict[str, str] | None = None

    # -- helpers -----------------------------------------------------------------------------

    def _gid(self, kind: str) -> str:
        return f"gid://shopify/{kind}/{next(self._ids)}"

    def _now(self) -> str:
        self._tick += 1  # strictly increasing even within one microsecond
        return (dt.datetime.now(dt.UTC) + dt.timedelta(microseconds=self._tick)).isoformat()

    @staticmethod
    def _find(records: dict[str, dict[str, Any]], ident: dict[str, Any] | None, keys: tuple[str, ...]) -> str | None:
        if not ident:
            return None
        if ident.get("id"):
            return ident["id"] if ident["id"] in records else ""
        if custom := ident.get("customId"):
            wanted = (custom["namespace"], custom["key"])
            return next((g for g, r in records.items() if r["metafields"].get(wanted) == custom["value"]), None)
        for key in keys:
            if ident.get(key):
                return next((g for g, r in records.items() if r.get(key) == ident[key]), None)
        return None

    def _idempotency_key(self, info: GraphQLResolveInfo) -> str | None:
        for directive in info.field_nodes[0].directives or ():
            if directive.name.value == "idempotent":
                arg = (directive.arguments or ())[0].value
                # graphql-core 3.3 passes VariableValues (the dict is .coerced); 3.2 passed the dict itself.
                given: Any = info.variable_values
                variables: dict[str, Any] = getattr(given, "coerced", given)
                return str(value_from_ast_untyped(arg, variables))
        return None

    # -- views -------------------------------------------------------------------------------

    def product_view(self, gid: str) -> dict[str, Any]:
        p = self.products[gid]
        variants = [self._variant_view(v) for v in p["variants"]]
        return {
            **{k: v for k, v in p.items() if k not in ("variants", "metafields")},
            "__typename": "Product",
            "metafield": lambda _i, namespace, key: self._metafield(p, namespace, key),
            "variants": lambda _i, first=None, after=None: _page(variants, first or _MAX_PAGE, after),
        }

    def _variant_view(self, v: dict[str, Any]) -> dict[str, Any]:
        return {**v, "__typename": "ProductVariant", "inventoryItem": self._item_view(v["inventoryItem"], v["sku"])}

    def _item_view(self, item_id: str, sku: str | None) -> dict[str, Any]:
        def level(_info: Any, locationId: str) -> dict[str, Any] | None:
            if (item_id, locationId) not in self.inventory:
                return None
            slot = (item_id, locationId)
            return {
                "id": f"{item_id}?location={locationId}",
                "location": {"id": locationId, "name": self.locations[locationId]},
                "quantities": lambda _i, names: [{"name": n, "quantity": self.quantity(slot, n)} for n in names],
            }

        return {"id": item_id, "sku": sku, "__typename": "InventoryItem", "inventoryLevel": level}

    def customer_view(self, gid: str) -> dict[str, Any]:
        c = self.customers[gid]
        return {
            **{k: v for k, v in c.items() if k != "metafields"},
            "__typename": "Customer",
            "metafield": lambda _i, namespace, key: self._metafield(c, namespace, key),
        }

    @staticmethod
    def _metafield(record: dict[str, Any], namespace: str, key: str) -> dict[str, Any] | None:
        value = record["metafields"].get((namespace, key))
        return None if value is None else {"namespace": namespace, "key": key, "value": value}

    def _items(self) -> dict[str, str]:
        # Rebuilt only after product writes: stock reads ask for many items per request.
        if self._item_index is None:
            self._item_index = {v["inventoryItem"]: v["sku"] for p in self.products.values() for v in p["variants"]}
        return self._item_index

    # -- queries -----------------------------------------------------------------------------

    def resolve_products(
        self, _info: Any, first: int | None = None, after: str | None = None, query: str | None = None
    ):
        found = [g for g in sorted(self.products, key=_num) if matches(self.products[g], query, "products")]
        return _page([self.product_view(g) for g in found], first, after)

    def resolve_customers(
        self, _info: Any, first: int | None = None, after: str | None = None, query: str | None = None
    ):
        found = [g for g in sorted(self.customers, key=_num) if matches(self.customers[g], query, "customers")]
        return _page([self.customer_view(g) for g in found], first, after)

    def resolve_locations(self, _info: Any, first: int | None = None, after: str | None = None):
        return _page([{"id": g, "name": n, "__typename": "Location"} for g, n in self.locations.items()], first, after)

    def resolve_nodes(self, _info: Any, ids: list[str]) -> list[dict[str, Any] | None]:
        items = self._items()
        out: list[dict[str, Any] | None] = []
        for gid in ids:
            if gid in self.products:
                out.append(self.product_view(gid))
            elif gid in self.customers:
                out.append(self.customer_view(gid))
            elif gid in items:
                out.append(self._item_view(gid, items[gid]))
            else:
                out.append(None)
        return out

    # -- mutations ---------------------------------------------------------------------------

    def product_set(self, info: Any, input: dict[str, Any], identifier: dict[str, Any] | None = None,
                    synchronous: bool = False) -> dict[str, Any]:  # fmt: skip
        gid = self._find(self.products, identifier, ("handle",))
        errors = self._check_product(input, creating=not gid, identifier=identifier)
        if gid == "":
            errors.append(_err(["identifier", "id"], "Product does not exist", "NOT_FOUND"))
        if errors:
            return {"product": None, "productSetOperation": None, "userErrors": errors}
        product = self.products[gid] if gid else self._new_product(input, identifier)
        self._apply_product(product, input)
        self.writes.append(("productSet", _ident_text(identifier) or product["id"]))
        view = self.product_view(product["id"])
        if synchronous:
            return {"product": view, "productSetOperation": None, "userErrors": []}
        operation = {"id": self._gid("ProductSetOperation"), "status": "COMPLETE", "product": view, "userErrors": []}
        return {"product": None, "productSetOperation": operation, "userErrors": []}

    def _check_product(self, data: dict[str, Any], *, creating: bool, identifier: dict[str, Any] | None) -> list[Any]:
        errors = []
        if creating and not (data.get("title") or "").strip():
            errors.append(_err(["input", "title"], "Title can't be blank", "BLANK"))
        if "status" in data and data["status"] not in _STATUSES:
            errors.append(_err(["input", "status"], f"Status {data['status']!r} is not valid", "INVALID"))
        options = {o["name"] for o in data.get("productOptions") or ()}
        for i, variant in enumerate(data.get("variants") or ()):
            try:
                if Decimal(variant.get("price") or "0") < 0:
                    raise InvalidOperation
            except InvalidOperation:
                errors.append(_err(["input", "variants", i, "price"], "Price is invalid", "INVALID"))
            if any(v["optionName"] not in options for v in variant["optionValues"]):
                errors.append(_err(["input", "variants", i, "optionValues"], "Option does not exist", "INVALID"))
        handle = data.get("handle")
        if handle and any(p["handle"] == handle for p in self.products.values() if not _same(p, identifier)):
            errors.append(_err(["input", "handle"], f"Handle {handle!r} already in use", "TAKEN"))
        return errors

    def _new_product(self, data: dict[str, Any], identifier: dict[str, Any] | None) -> dict[str, Any]:
        gid = self._gid("Product")
        # An upsert by handle creates the product *with* that handle, so the next upsert finds it.
        wanted = data.get("handle") or (identifier or {}).get("handle")
        base = wanted or re.sub(r"[^a-z0-9]+", "-", data["title"].lower()).strip("-") or "product"
        handle, n = base, 1
        while any(p["handle"] == handle for p in self.products.values()):
            handle, n = f"{base}-{n}", n + 1
        product: dict[str, Any] = {"id": gid, "title": "", "handle": handle, "status": "ACTIVE", "vendor": None,
                   "productType": None, "descriptionHtml": None, "tags": [], "variants": [], "metafields": {},
                   "updatedAt": ""}  # fmt: skip
        if identifier and (custom := identifier.get("customId")):
            product["metafields"][(custom["namespace"], custom["key"])] = custom["value"]
        self.products[gid] = product
        return product

    def _apply_product(self, product: dict[str, Any], data: dict[str, Any]) -> None:
        for key in ("title", "handle", "status", "vendor", "productType", "descriptionHtml", "tags"):
            if key in data and data[key] is not None:
                product[key] = list(data[key]) if key == "tags" else data[key]
        for m in data.get("metafields") or ():
            product["metafields"][(m["namespace"], m["key"])] = m["value"]
        if "variants" in data:
            # A list field is replaced: variants matched by option values keep their ids, the rest go.
            old = {_option_key(v["optionValues"]): v for v in product["variants"]}
            new = []
            for given in data["variants"] or ():
                option = _option_key(given["optionValues"])
                variant = old.pop(option, None) or {
                    "id": self._gid("ProductVariant"), "inventoryItem": self._gid("InventoryItem"),
                    "optionValues": given["optionValues"], "price": "0.00", "sku": None, "barcode": None,
                }  # fmt: skip
                for field in ("sku", "price", "barcode"):
                    if given.get(field) is not None:
                        variant[field] = given[field]
                if not any(item == variant["inventoryItem"] for item, _ in self.inventory):
                    for location in self.locations:
                        self.inventory[(variant["inventoryItem"], location)] = 0
                new.append(variant)
            for gone in old.values():
                for location in self.locations:
                    self.inventory.pop((gone["inventoryItem"], location), None)
            product["variants"] = new
        product["updatedAt"] = self._now()
        self._item_index = None

    def customer_set(self, info: Any, input: dict[str, Any], identifier: dict[str, Any] | None = None):
        gid = self._find(self.customers, identifier, ("email", "phone"))
        errors = []
        if gid == "":
            errors.append(_err(["identifier", "id"], "Customer does not exist", "NOT_FOUND"))
        email = input.get("email")
        if email is not None and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
            errors.append(_err(["input", "email"], "Email is invalid", "INVALID"))
        elif email and any(c["email"] == email for g, c in self.customers.items() if g != gid):
            errors.append(_err(["input", "email"], "Email has already been taken", "TAKEN"))
        if not gid and not any(input.get(k) for k in ("firstName", "lastName", "email", "phone")):
            errors.append(_err(["input"], "A name, phone number or email address must be present", "BLANK"))
        if errors:
            return {"customer": None, "userErrors": errors}
        if not gid:
            gid = self._gid("Customer")
            self.customers[gid] = {"id": gid, "firstName": None, "lastName": None, "email": None, "phone": None,
                                   "note": None, "tags": [], "metafields": {}, "updatedAt": ""}  # fmt: skip
            if identifier and (custom := identifier.get("customId")):
                self.customers[gid]["metafields"][(custom["namespace"], custom["key"])] = custom["value"]
        customer = self.customers[gid]
        for key in ("firstName", "lastName", "email", "phone", "note", "tags"):
            if key in input:
                customer[key] = list(input[key] or ()) if key == "tags" else input[key]
        for m in input.get("metafields") or ():
            customer["metafields"][(m["namespace"], m["key"])] = m["value"]
        customer["updatedAt"] = self._now()
        self.writes.append(("customerSet", _ident_text(identifier) or gid))
        return {"customer": self.customer_view(gid), "userErrors": []}

    def inventory_set_quantities(self, info: Any, input: dict[str, Any]) -> dict[str, Any]:
        key = self._idempotency_key(info)
        params = json.dumps(input, sort_keys=True, default=str)
        if key is not None and key in self.idempotent:
            first_params, result = self.idempotent[key]
            if first_params != params:
                # The same key names one operation: other parameters are a client bug, never a replay.
                message = "The same idempotency key cannot be used with different operation parameters"
                error = _err(["idempotencyKey"], message, "IDEMPOTENCY_KEY_PARAMETER_MISMATCH")
                return {"inventoryAdjustmentGroup": None, "userErrors": [error]}
            self.replays += 1
            return result
        result = self._set_quantities(input)
        if key is not None:
            self.idempotent[key] = (params, result)
        return result

    def _set_quantities(self, data: dict[str, Any]) -> dict[str, Any]:
        errors = []
        if data["name"] not in ("available", "on_hand"):
            errors.append(_err(["input", "name"], "Quantity name is invalid", "INVALID_NAME"))
        if data["reason"] not in _REASONS:
            errors.append(_err(["input", "reason"], "Reason is invalid", "INVALID_REASON"))
        if len(data["quantities"]) > _MAX_PAGE:
            errors.append(_err(["input", "quantities"], f"At most {_MAX_PAGE} quantities", "TOO_MANY"))
        cas = self.api_version >= "2026-04"
        for i, q in enumerate(data["quantities"]):
            where: list[str | int] = ["input", "quantities", i]
            slot = (q["inventoryItemId"], q["locationId"])
            if slot not in self.inventory:
                errors.append(_err([*where, "inventoryItemId"], "The inventory item is not stocked there", "NOT_FOUND"))
                continue
            if cas and "changeFromQuantity" not in q:
                errors.append(_err([*where, "changeFromQuantity"], "changeFromQuantity is required", "INVALID"))
                continue
            expected = q.get("changeFromQuantity") if cas else q.get("compareQuantity")
            if expected is not None and expected != self.quantity(slot, data["name"]):
                code = "CHANGE_FROM_QUANTITY_STALE" if cas else "COMPARE_QUANTITY_STALE"
                errors.append(_err([*where, "changeFromQuantity"], "The quantity has changed since it was read", code))
        if errors:  # all or nothing
            return {"inventoryAdjustmentGroup": None, "userErrors": errors}
        changes = []
        for q in data["quantities"]:
            slot = (q["inventoryItemId"], q["locationId"])
            # Setting `available` moves on_hand by the same delta and the reverse; committed stays.
            delta = q["quantity"] - self.quantity(slot, data["name"])
            self.inventory[slot] += delta
            for name in ("available", "on_hand"):
                changes.append({"name": name, "delta": delta, "quantityAfterChange": self.quantity(slot, name),
                                "item": self._item_view(slot[0], self._items().get(slot[0])),
                                "location": {"id": slot[1], "name": self.locations[slot[1]],
                                             "__typename": "Location"}})  # fmt: skip
            self.writes.append(("inventorySetQuantities", f"{q['inventoryItemId']}@{q['locationId']}"))
        group = {"id": self._gid("InventoryAdjustmentGroup"), "reason": data["reason"], "createdAt": self._now()}
        group["changes"] = lambda _i, quantityNames=None, **_filters: [
            c for c in changes if quantityNames is None or c["name"] in quantityNames
        ]
        return {"inventoryAdjustmentGroup": group, "userErrors": []}

    # -- stock helpers (what orders do in a real shop) ---------------------------------------

    def quantity(self, slot: tuple[str, str], name: str) -> int:
        """One of the distinct inventory quantities of a slot: available, committed or on_hand."""
        available, committed = self.inventory[slot], self.committed.get(slot, 0)
        if name not in _QUANTITY_NAMES:
            raise GraphQLError(f"Invalid quantity name {name!r}", extensions={"code": "BAD_REQUEST"})
        return {"available": available, "committed": committed, "on_hand": available + committed}.get(name, 0)

    def sell(self, slot: tuple[str, str], units: int) -> None:
        """An order is placed: units move from available to committed; on_hand is unchanged until shipped."""
        self.inventory[slot] -= units
        self.committed[slot] = self.committed.get(slot, 0) + units

    def ship(self, slot: tuple[str, str], units: int) -> None:
        """The order ships: committed and on_hand drop, available is unchanged."""
        self.committed[slot] = self.committed.get(slot, 0) - units

    def product_delete(self, info: Any, input: dict[str, Any]) -> dict[str, Any]:
        product = self.products.pop(input["id"], None)
        if product is None:
            return {"deletedProductId": None, "userErrors": [_err(["id"], "Product does not exist", "NOT_FOUND")]}
        for variant in product["variants"]:
            for location in self.locations:
                self.inventory.pop((variant["inventoryItem"], location), None)
        self.writes.append(("productDelete", input["id"]))
        self._item_index = None
        return {"deletedProductId": input["id"], "userErrors": []}

    def customer_delete(self, info: Any, input: dict[str, Any]) -> dict[str, Any]:
        if self.customers.pop(input["id"], None) is None:
            return {"deletedCustomerId": None, "userErrors": [_err(["id"], "Customer does not exist", "NOT_FOUND")]}
        self.writes.append(("customerDelete", input["id"]))
        return {"deletedCustomerId": input["id"], "userErrors": []}


def _num(gid: str) -> int:
    return int(gid.rsplit("/", 1)[1])


def _option_key(values: list[dict[str, str]]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((v["optionName"], v["name"]) for v in values))


def _ident_text(identifier: dict[str, Any] | None) -> str | None:
    if not identifier:
        return None
    if custom := identifier.get("customId"):
        return f"{custom['namespace']}.{custom['key']}={custom['value']}"
    return next((f"{k}={v}" for k, v in identifier.items() if v), None)


def _same(product: dict[str, Any], identifier: dict[str, Any] | None) -> bool:
    if not identifier:
        return False
    if identifier.get("id"):
        return product["id"] == identifier["id"]
    if custom := identifier.get("customId"):
        return product["metafields"].get((custom["namespace"], custom["key"])) == custom["value"]
    return bool(identifier.get("handle")) and product["handle"] == identifier["handle"]
