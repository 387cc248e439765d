"""The ``filters`` field of knowledge-base queries: the grammar of ``privex.services.filters`` checked while the body
is loaded, so a filter it does not take is a 422 naming its key, and documented in the OpenAPI description."""

from __future__ import annotations

from marshmallow import ValidationError, fields

from privex.services import filters as grammar
from privex.services.errors import Invalid

DESCRIPTION = (
    "Metadata filters; every key must match. A key (1-64 letters, digits, `_ . : -`) maps to a value (equal to it), "
    "a list of values (equal to any of them) or an object of operators, all of which must hold: `$eq`, `$ne` (a "
    "value), `$in`, `$nin` (a list of values), `$gt`, `$gte`, `$lt`, `$lte` (a number). Values are strings, numbers "
    "or booleans, compared as JSON values (`\"1\"` is not `1`); ranges match numeric values only; `$ne` and `$nin` "
    "also match chunks without the key. `document_id` takes a document's id and equality operators only. At most "
    f"{grammar.MAX_KEYS} keys and {grammar.MAX_VALUES} values per list. "
    'Example: `{"file_name": ["handbook.md", "faq.md"], "page": {"$gte": 3, "$lte": 9}}`.')


class MetadataFilters(fields.Dict):
    """A dict the filter grammar accepts; loaded as given (the service turns it into store filters)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("load_default", dict)
        kwargs.setdefault("metadata", {"description": DESCRIPTION})
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs)
        try:
            grammar.parse_filters(value)
        except Invalid as error:
            raise ValidationError(error.errors.get("filters") or error.message) from error
        return value
