"""The HTML side: the landing page, the session sign-in used by the back office (and later the builder), and the
embeddable chat widget's script with a demo page for trying a bot.

API clients never use these routes; they authenticate with tokens or API keys. The widget itself talks only to the
public chat API (docs/public-api.md).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import (Blueprint, abort, current_app, flash, redirect, render_template, request, send_from_directory,
                   url_for)
from flask_login import current_user, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Email

from privex.clock import now
from privex.extensions import db, limiter
from privex.models import Chatbot
from privex.services import accounts

bp = Blueprint("web", __name__)


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Email(check_deliverability=False)])
    password = PasswordField("Password", validators=[DataRequired()])


def _safe_next(target: str | None) -> str:
    """Only redirect to paths on this site, never to another host."""
    if target and not urlsplit(target).netloc and target.startswith("/") and not target.startswith("//"):
        return target
    return url_for("web.index")


@bp.get("/")
def index():
    return render_template("index.html")


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["AUTH_RATELIMIT"], methods=["POST"],
               deduct_when=lambda response: response.status_code >= 400)
def login():
    form = LoginForm()
    if form.validate_on_submit():
        user = accounts.check_email_password(form.email.data, form.password.data)
        if user is not None:
            login_user(user)
            user.last_login_at = now()  # as the API's sign-in records it
            db.session.commit()
            return redirect(_safe_next(request.args.get("next")))
        flash("Wrong email or password.", "error")  # one message for both: do not reveal which accounts exist
    status = 401 if request.method == "POST" else 200
    return render_template("login.html", form=form), status


class LogoutForm(FlaskForm):
    """Only the CSRF token: another site cannot sign someone out."""


@bp.post("/logout")
def logout():
    if current_user.is_authenticated:
        if not LogoutForm().validate_on_submit():
            abort(400)
        logout_user()
    return redirect(url_for("web.index"))


@bp.get("/widget.js")
def widget_js():
    """The chat widget, embedded on any site: cacheable for five minutes, loadable from every origin."""
    response = send_from_directory(current_app.static_folder, "widget.js", mimetype="application/javascript",
                                   max_age=300)
    response.headers["Cache-Control"] = "public, max-age=300"
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.get("/widget/demo/<public_id>")
def widget_demo(public_id: str):
    """A plain page carrying the widget for one bot, on the app's own origin, to try the bot before embedding it."""
    bot = db.session.scalar(sa.select(Chatbot).where(Chatbot.public_id == public_id))
    if bot is None or bot.status != "active":  # as on the public API: only a live bot chats
        abort(404)
    return render_template("widget_demo.html", bot=bot)
