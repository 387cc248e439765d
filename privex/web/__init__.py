"""The builder: server-rendered pages for people who do not write code, HTMX for partial updates.

Pages call services (``privex.services``), never the API over HTTP and never ``privex.api`` modules. The API
authenticates by token or key; the pages by a Flask-Login session cookie, so every form carries a CSRF token.

How the pages are put together (README, "Writing a page", says the same for newcomers):

- **One module per area** under ``privex/web/`` with a ``bp = Blueprint("<area>", __name__, url_prefix="/<area>")``
  and, if it has a header link, ``NAV = NavEntry("<Label>", "web.<area>.<view>", order=N)``; add the module to
  ``AREAS`` below. Its blueprint is nested in ``web``, so endpoints are ``web.<area>.<view>``. Its templates live in
  ``templates/<area>/`` and extend ``base.html`` (blocks ``title``, ``content``, ``scripts``); HTMX partials in
  ``templates/partials/<area>/`` (answer them when ``request.htmx``, from htmx-flask).
- **Signed in by default**: every page needs a sign-in (``/login?next=...`` otherwise) unless decorated with
  ``shell.public_page``.
- **Where and who**: ``shell.workspace_for(action)``, ``shell.organization_for(action)``,
  ``shell.resource_or_404(Model, id, action)``, ``shell.scoped(Model)``, ``shell.may(action)`` (see
  ``privex.web.shell``): the one permission table decides; another tenant's id is the 404 page, a viewer writing
  the 403 page.
- **Forms**: subclass ``forms.PageForm``; run the service inside ``with forms.show_errors(form):`` and answer
  ``form_status(form)``; draw fields with ``templates/macros/forms.html``.
- **CSRF**: ``CSRFProtect`` guards every POST/PUT/PATCH/DELETE of the app except the API's blueprints (tokens, keys
  and origins, never cookies). Forms put ``{{ form.hidden_tag() }}`` (or ``csrf_field()``) in; HTMX requests send
  the token in ``X-CSRFToken`` from ``hx-headers`` on ``<body>``; scripts read ``<meta name="csrf-token">``.
- **Errors** outside /api are the shell's pages (``privex.web.errors``).
- **A plugin's pages** (from ``privex_startup``): its own blueprint on the app, templates extending ``base.html``,
  ``shell.signed_in_only`` on its views and ``shell.add_nav(app, NavEntry(...))`` for a header link.

Modules: ``shell`` (sign-in gate, context, permissions, navigation), ``forms``, ``errors``, and the areas: ``home``,
``auth``, ``account``, ``widget``, ``knowledge``, ``chatbots``, ``chatflows``, ``team``.
"""

from __future__ import annotations

from flask import Blueprint, g, request, url_for
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup, escape

from privex.extensions import csrf, htmx
from privex.web import account, auth, chatbots, chatflows, errors, home, knowledge, shell, team, widget

# Every area of the builder, in no particular order (the header orders links by their NAV's ``order``).
AREAS = (home, auth, account, widget, knowledge, chatbots, chatflows, team)


def init_web(app, *, csrf_exempt=()) -> None:
    """Wire the pages into ``app``: CSRF on every form of the app but the ``csrf_exempt`` blueprints (the API's:
    tokens, API keys and origins, never cookies), htmx-flask, the areas' blueprints under ``web``, the navigation,
    the sign-in gate, the template helpers and the error pages."""
    csrf.init_app(app)
    for blueprint in csrf_exempt:
        csrf.exempt(blueprint)
    htmx.init_app(app)

    web = Blueprint("web", __name__)
    for area in AREAS:
        web.register_blueprint(area.bp)
    web.before_request(shell.sign_in_first)
    web.before_request(shell.settle_place)
    app.register_blueprint(web)
    for area in AREAS:
        if getattr(area, "NAV", None) is not None:
            shell.add_nav(app, area.NAV)

    app.before_request(forget_loaded_user)
    app.extensions["privex_error_page"] = errors.error_page
    app.jinja_env.add_extension("jinja2.ext.do")  # the macros build attribute lists
    app.jinja_env.globals.update(csrf_token=generate_csrf, csrf_field=csrf_field, here=shell.here, may=shell.may,
                                 nav_entries=shell.nav_entries, page_url=page_url)
    app.jinja_env.filters["sentence"] = sentence


def forget_loaded_user() -> None:
    """Flask-Login keeps the loaded user on ``g``, which lives as long as the app context: a request made inside an
    app context its caller pushed (the test client in a test's transaction, a script) would inherit the previous
    request's user. Each request loads its own from its own cookie."""
    g.pop("_login_user", None)


def csrf_field() -> Markup:
    """The hidden CSRF input, for a form that is no ``PageForm`` (a lone button)."""
    return Markup(f'<input type="hidden" name="csrf_token" value="{escape(generate_csrf())}">')


def page_url(number: int) -> str:
    """This page's address showing page ``number`` of its list (the other query arguments kept)."""
    arguments = {**(request.view_args or {}), **request.args.to_dict(), "page": number}
    return url_for(request.endpoint, **arguments)


def sentence(text) -> str:
    """A service's message as a sentence: a capital first letter and a full stop."""
    text = str(text or "").strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?", ":")) else text + "."
