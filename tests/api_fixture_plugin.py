"""A throwaway plugin whose ``privex_startup`` adds routes exercising the API conventions (errors, limits, pages).

Registered only by tests that build an app with it: ``make_app(plugins=[api_fixture_plugin])``.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint as FlaskBlueprint
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from privex import hookimpl
from privex.api.pagination import SelectPage
from privex.extensions import limiter
from privex.models import User

blp = Blueprint("fixture", __name__, url_prefix="/api/v1/_fixture")
html = FlaskBlueprint("fixture_html", __name__)


class EchoSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=20))
    count = fields.Integer(load_default=1)


class FixtureUserSchema(Schema):
    username = fields.String()


@blp.route("/echo")
class Echo(MethodView):
    @blp.arguments(EchoSchema)
    @blp.response(201, EchoSchema)
    def post(self, payload):
        """Echo a validated payload"""
        return payload


@blp.route("/users")
class Users(MethodView):
    @blp.response(200, FixtureUserSchema(many=True))
    @blp.paginate(SelectPage)
    def get(self):
        """Page through users by name"""
        return sa.select(User).order_by(User.username)


@blp.route("/boom")
class Boom(MethodView):
    def get(self):
        """Fail with an unexpected error"""
        raise RuntimeError("kaboom: a bug")


@blp.route("/limited")
class Limited(MethodView):
    decorators = [limiter.limit("2 per minute")]

    def get(self):
        """Allow two calls a minute"""
        return {"ok": True}


@html.get("/_fixture/boom")
def html_boom():
    raise RuntimeError("kaboom in a page")


@hookimpl
def privex_startup(app):
    app.extensions["privex_api"].register_blueprint(blp)
    app.register_blueprint(html)
