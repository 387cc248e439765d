"""GET /api/v1/plugins: every installed plugin, its distribution and version, and what it provides."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from privex.extensions import state
from privex.tenancy.context import public

blp = Blueprint("plugins", __name__, url_prefix="/plugins", description="Installed plugins")


class PluginSchema(Schema):
    name = fields.String(required=True)
    distribution = fields.String(allow_none=True)
    version = fields.String(allow_none=True)
    hooks = fields.List(fields.String(), required=True)
    provides = fields.Dict(keys=fields.String(), values=fields.List(fields.String()), required=True,
                           metadata={"description": "registry name -> names this plugin provides"})


@blp.route("")
@public
class PluginList(MethodView):
    @blp.response(200, PluginSchema(many=True))
    def get(self):
        """List installed plugins"""
        return state().plugins.describe()


class ConnectorSchema(Schema):
    name = fields.String(required=True)
    title = fields.String(allow_none=True)
    config_schema = fields.Dict(required=True, metadata={"description": "JSON Schema of the connector's settings"})


@blp.route("/source-connectors")
@public
class SourceConnectorList(MethodView):
    @blp.response(200, ConnectorSchema(many=True))
    def get(self):
        """List installed source connectors with the JSON Schema of their settings (a builder's form)"""
        return [{"name": connector.name, "title": (connector.config_schema or {}).get("title"),
                 "config_schema": connector.config_schema or {}}
                for connector in state().plugins.source_connectors.values()]
