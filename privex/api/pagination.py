"""Pagination for every list endpoint, the flask-smorest way.

A list view is decorated ``@blp.paginate(SelectPage)`` and returns a SQLAlchemy ``select()``; the client passes
``?page=N&page_size=M`` (page_size 1-100, default 10) and reads the totals from the JSON ``X-Pagination`` response
header (``total``, ``total_pages``, ``page``, ``first_page``, ``last_page``, ``previous_page``, ``next_page``).
A page past the end answers an empty list, not an error.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask_smorest import Page

from privex.extensions import db


class SelectPage(Page):
    """Pages a SQLAlchemy ``select()`` with LIMIT/OFFSET and a COUNT over the same filters."""

    @property
    def items(self):
        params = self.page_params
        statement = self.collection.limit(params.page_size).offset(params.first_item)
        return db.session.scalars(statement).all()

    @property
    def item_count(self) -> int:
        counted = self.collection.order_by(None).subquery()
        return db.session.scalar(sa.select(sa.func.count()).select_from(counted))
