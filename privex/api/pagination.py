"""Pagination for every list endpoint, the flask-smorest way.

A list view is decorated ``@blp.paginate(SelectPage)`` and returns a SQLAlchemy ``select()``; the client passes
``?page=N&page_size=M`` (page_size 1-100, default 10) and reads the totals from the JSON ``X-Pagination`` response
header (``total``, ``total_pages``, ``page``, ``first_page``, ``last_page``, ``previous_page``, ``next_page``).
A page past the end answers an empty list, not an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import sqlalchemy as sa
from flask_smorest import Page

from privex.extensions import db

MAX_OFFSET = 2**62


@dataclass(frozen=True)
class Listing:
    """A ``select()`` whose rows are turned into response items by ``present(row)`` (for values a model lacks,
    such as the caller's role). Return it from a ``@blp.paginate(SelectPage)`` view instead of the bare select."""

    statement: sa.Select
    present: Callable[[sa.Row], object]


class SelectPage(Page):
    """Pages a SQLAlchemy ``select()`` (or a ``Listing``) with LIMIT/OFFSET and a COUNT over the same filters."""

    @property
    def _statement(self) -> sa.Select:
        return self.collection.statement if isinstance(self.collection, Listing) else self.collection

    @property
    def items(self):
        params = self.page_params
        # flask-smorest bounds `page` only from below: ?page=10**20 would overflow PostgreSQL's bigint OFFSET (a 500).
        # Any offset this large is past the end of every list, which answers an empty page.
        statement = self._statement.limit(params.page_size).offset(min(params.first_item, MAX_OFFSET))
        if isinstance(self.collection, Listing):
            return [self.collection.present(row) for row in db.session.execute(statement)]
        return db.session.scalars(statement).all()

    @property
    def item_count(self) -> int:
        counted = self._statement.order_by(None).subquery()
        return db.session.scalar(sa.select(sa.func.count()).select_from(counted))


class Counted:
    """A list a store keeps (not a ``select()``): ``count()`` and ``window(offset, limit)``. Return it from a
    ``@blp.paginate(CountedPage)`` view."""

    def __init__(self, count: Callable[[], int], window: Callable[[int, int], list]):
        self.count, self.window = count, window


class CountedPage(Page):
    @property
    def items(self):
        params = self.page_params
        return self.collection.window(min(params.first_item, MAX_OFFSET), params.page_size)

    @property
    def item_count(self) -> int:
        return self.collection.count()
