"""The plugin manager and the read-only registries built from it at start-up.

``create_app`` calls :func:`load_plugins` once and keeps the result, a :class:`Plugins`, in
``app.extensions["privex"].plugins``. Code that needs an implementation asks a registry by name::

    plugins = current_plugins()
    store = plugins.vector_stores["pgvector"]     # NotInstalled names what is installed when it is missing

A plugin is any module or object with ``@hookimpl`` functions, found through the entry point group ``privex``.
"""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import pluggy

from privex import hookspecs

log = logging.getLogger(__name__)
trace_log = logging.getLogger("privex.plugins.trace")

ENTRY_POINT_GROUP = "privex"

# registry attribute -> (hook name, what one implementation is called in messages)
REGISTRY_HOOKS: dict[str, tuple[str, str]] = {
    "node_types": ("privex_node_types", "node type"),
    "vector_stores": ("privex_vector_stores", "vector store"),
    "document_parsers": ("privex_document_parsers", "document parser"),
    "source_connectors": ("privex_source_connectors", "source connector"),
    "chunkers": ("privex_chunkers", "chunker"),
    "embedding_models": ("privex_embedding_models", "embedding model"),
    "llm_providers": ("privex_llm_providers", "LLM provider"),
    "channels": ("privex_channels", "channel"),
}


class PluginError(RuntimeError):
    """A plugin could not be loaded, or two plugins disagree. Raised at start-up."""


class NotInstalled(LookupError):
    """A requested implementation is not provided by any installed plugin."""

    def __str__(self) -> str:  # LookupError would quote the message
        return str(self.args[0])


class Registry(Mapping):
    """A read-only mapping of name -> implementation for one hook, remembering which plugin gave each."""

    def __init__(self, kind: str, items: dict[str, Any], owners: dict[str, str]):
        self.kind = kind
        self._items = MappingProxyType(dict(items))
        self._owners = MappingProxyType(dict(owners))

    def __getitem__(self, name: str) -> Any:
        try:
            return self._items[name]
        except KeyError:
            installed = ", ".join(sorted(self._items)) or "none"
            raise NotInstalled(f"{self.kind} {name!r} is not installed (installed: {installed})") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def owner(self, name: str) -> str:
        """The name of the plugin that provides ``name``."""
        self[name]
        return self._owners[name]

    def __repr__(self) -> str:
        return f"<Registry {self.kind}: {', '.join(sorted(self._items))}>"


@dataclass
class Plugins:
    """The plugin manager of one app and the registries built from it."""

    manager: pluggy.PluginManager
    trace: bool = False
    registries: dict[str, Registry] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.refresh()

    def __getattr__(self, name: str) -> Registry:
        registries = self.__dict__.get("registries", {})
        if name in registries:
            return registries[name]
        raise AttributeError(name)

    def refresh(self) -> None:
        """(Re)build every registry from the registered plugins; raises PluginError on a duplicate name."""
        self.registries = {attr: self._collect(hook, kind) for attr, (hook, kind) in REGISTRY_HOOKS.items()}

    def _collect(self, hook_name: str, kind: str) -> Registry:
        items: dict[str, Any] = {}
        owners: dict[str, str] = {}
        hook = getattr(self.manager.hook, hook_name)
        # Called implementation by implementation (not through the hook) so each result is attributed to its plugin.
        for impl in hook.get_hookimpls():  # registration order
            plugin_name = impl.plugin_name
            provided = impl.function() or []
            if self.trace:
                trace_log.info(f"{hook_name} [{plugin_name}] -> {provided!r}")
            if not isinstance(provided, Iterable) or isinstance(provided, (str, bytes)):
                raise PluginError(f"plugin {plugin_name!r}: {hook_name}() must return a list, got {provided!r}")
            for implementation in provided:
                name = getattr(implementation, "name", None)
                if not isinstance(name, str) or not name:
                    raise PluginError(
                        f"plugin {plugin_name!r}: {hook_name}() returned {implementation!r} without a string `name`"
                    )
                if name in items:
                    raise PluginError(
                        f"{kind} {name!r} is provided by both plugin {owners[name]!r} and plugin {plugin_name!r}; "
                        f"uninstall one or leave one out of PRIVEX_LOAD_PLUGINS"
                    )
                items[name] = implementation
                owners[name] = plugin_name
        return Registry(kind, items, owners)

    def describe(self) -> list[dict[str, Any]]:
        """One entry per registered plugin: its name, distribution, version, hooks and what it provides."""
        distributions = {id(plugin): dist for plugin, dist in self.manager.list_plugin_distinfo()}
        described = []
        for name, plugin in sorted(self.manager.list_name_plugin(), key=lambda pair: pair[0]):
            if plugin is None:  # blocked
                continue
            dist = distributions.get(id(plugin))
            provides = {
                attr: sorted(n for n in registry if registry.owner(n) == name)
                for attr, registry in self.registries.items()
            }
            described.append({
                "name": name,
                "distribution": dist.project_name if dist else None,
                "version": dist.version if dist else getattr(plugin, "__version__", None),
                "hooks": sorted(hook.name for hook in self.manager.get_hookcallers(plugin) or []),
                "provides": {attr: names for attr, names in provides.items() if names},
            })
        return described


def create_manager() -> pluggy.PluginManager:
    manager = pluggy.PluginManager(ENTRY_POINT_GROUP)
    manager.add_hookspecs(hookspecs)
    return manager


def load_plugins(allow: list[str] | None = None, trace: bool = False,
                 extra: Iterable[Any] = ()) -> Plugins:
    """Build the plugin manager: entry points of group ``privex`` (only those named in ``allow`` when it is not
    None), then ``extra`` plugin objects. Fails fast, naming the plugin, when one cannot be imported, when an allowed
    one is not installed, or when a hook implementation matches no hookspec."""
    manager = create_manager()
    available = {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
    if allow is not None:
        missing = sorted(set(allow) - set(available))
        if missing:
            raise PluginError(
                f"PRIVEX_LOAD_PLUGINS names {', '.join(map(repr, missing))}, which is not installed "
                f"(installed: {', '.join(sorted(available)) or 'none'})"
            )
    for name in sorted(available):
        if allow is not None and name not in allow:
            log.info("plugin skipped by PRIVEX_LOAD_PLUGINS", extra={"plugin": name})
            continue
        try:
            manager.load_setuptools_entrypoints(ENTRY_POINT_GROUP, name=name)
        except Exception as error:
            ep = available[name]
            raise PluginError(f"plugin {name!r} ({ep.value}) failed to load: {error!r}") from error
    for plugin in extra:
        manager.register(plugin)
    try:
        manager.check_pending()
    except pluggy.PluginValidationError as error:
        raise PluginError(f"plugin {error.plugin!r} implements an unknown hook: {error}") from error
    if trace:
        # Hooks called through the manager (privex_startup, later ones); registry hooks are logged in _collect.
        manager.trace.root.setwriter(lambda message: trace_log.info(message.rstrip()))
        manager.enable_tracing()
    return Plugins(manager, trace=trace)
