"""Signing up, signing in (email and password, or a browser wallet), signing out, and accepting an invitation.

The checks are the services' (``registration.sign_up``, ``accounts.check_email_password``, ``wallet_signin``,
``invitations.accept_invitation``), so a page refuses exactly what the API refuses, in the same words. Failed
attempts count against ``PRIVEX_AUTH_RATELIMIT`` per client address, as on the API.

Wallets sign in from the browser (``static/wallet.js``): the page asks ``/login/wallet/<provider>/challenge`` for the
message, the wallet signs it with its own signing call (MetaMask ``personal_sign``, Phantom ``signMessage``, Keplr
``signArbitrary``), and ``/login/wallet/<provider>/verify`` checks the signature and opens the session. Both are
small JSON endpoints protected by the session's CSRF token (sent in ``X-CSRFToken``). Linking a wallet to the
signed-in account is ``privex.web.account``.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, jsonify, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user
from wtforms import EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, Email, Length, Optional

from privex.clock import now
from privex.extensions import db, limiter
from privex.models import Invitation, User
from privex.services import accounts, invitations, registration, wallet_signin, workspaces
from privex.services.errors import Invalid, ServiceError
from privex.statuses import status_of
from privex.web.forms import PageForm, form_status, show_errors
from privex.web.shell import SESSION_ORGANIZATION, SESSION_WORKSPACE, public_page, remember, switch_to

bp = Blueprint("auth", __name__)

WALLETS = {"evm": "MetaMask", "solana": "Phantom", "cosmos": "Keplr"}


def auth_limit():
    """Failed attempts per client address on one sign-in page; successes do not count (as the API's)."""
    return limiter.limit(lambda: current_app.config["AUTH_RATELIMIT"], methods=["POST"],
                         deduct_when=lambda response: response.status_code >= 400)


def safe_next(target: str | None, default: str = "web.home.app") -> str:
    """Only redirect to paths on this site, never to another host."""
    if target and not urlsplit(target).netloc and target.startswith("/") and not target.startswith("//") \
            and "\\" not in target:
        return target
    return url_for(default)


def open_session(user: User) -> None:
    """Sign ``user`` in to this browser, in their default organization and workspace. Commits."""
    login_user(user)
    user.last_login_at = now()  # as the API's sign-in records it
    db.session.commit()
    remember(*workspaces.default_context(user.id))


# -- email and password --------------------------------------------------------------------------------------------

class SignUpForm(PageForm):
    email = EmailField("Email", validators=[DataRequired(), Email(check_deliverability=False), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=256)],
                             description=f"Use {accounts.PASSWORD_RULE}.")
    display_name = StringField("Your name", validators=[Optional(), Length(max=120)],
                               description="How your team sees you. Optional.")


class LoginForm(PageForm):
    email = EmailField("Email", validators=[DataRequired(), Email(check_deliverability=False), Length(max=255)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=256)])


@bp.route("/signup", methods=["GET", "POST"])
@public_page
@auth_limit()
def signup():
    if current_user.is_authenticated:
        return redirect(safe_next(request.args.get("next")))
    form = SignUpForm()
    if form.validate_on_submit():
        with show_errors(form, fields={None: "email"}):  # "an account with this email already exists"
            user = registration.sign_up(form.email.data, form.password.data, form.display_name.data or None)
            open_session(user)
            flash("Welcome to PrivexBot! Your account and your own workspace are ready.", "success")
            return redirect(safe_next(request.args.get("next")))
    return render_template("auth/signup.html", form=form, rule=accounts.PASSWORD_RULE), form_status(form)


@bp.route("/login", methods=["GET", "POST"])
@public_page
@auth_limit()
def login():
    form = LoginForm()
    if form.validate_on_submit():
        user = accounts.check_email_password(form.email.data, form.password.data)
        if user is not None:
            open_session(user)
            return redirect(safe_next(request.args.get("next")))
        db.session.commit()  # nothing to keep, but end the transaction the check opened
        # One message for both: do not reveal which accounts exist.
        form.password.errors = ["Wrong email or password."]
        return render_template("auth/login.html", form=form, wallets=WALLETS), 401
    return render_template("auth/login.html", form=form, wallets=WALLETS), form_status(form)


@bp.post("/logout")
@public_page
def logout():
    """Sign out (a POST: CSRFProtect checks its token, so another site cannot sign someone out)."""
    if current_user.is_authenticated:
        logout_user()
        for key in (SESSION_ORGANIZATION, SESSION_WORKSPACE):
            session.pop(key, None)
    return redirect(url_for("web.home.index"))


# -- wallets -------------------------------------------------------------------------------------------------------

def json_refusal(error: ServiceError):
    return jsonify({"message": error.message, "errors": error.errors}), status_of(error)


def wallet_payload(*names: str) -> dict:
    """The named string fields of the JSON body (each at most 2048 characters); ``Invalid`` otherwise."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise Invalid("send a JSON object")
    found, errors = {}, {}
    for name in names:
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, str) or not value or len(value) > 2048:
            errors[name] = ["a non-empty text of at most 2048 characters"]
        else:
            found[name] = value
    if errors:
        raise Invalid("some fields are invalid", errors=errors)
    return found


def challenge_for(provider: str) -> dict:
    payload = wallet_payload("address", "chain_id", "prefix")
    if "address" not in payload:
        raise Invalid("the wallet gave no address", errors={"address": ["required"]})
    return wallet_signin.issue_challenge(provider, payload["address"], chain_id=payload.get("chain_id"),
                                         prefix=payload.get("prefix"))


def proof() -> dict:
    """The signed challenge the page sends: ``nonce``, ``signature`` and what the wallet gave with it."""
    payload = wallet_payload("nonce", "signature", "public_key", "address", "chain_id", "message")
    if "nonce" not in payload or "signature" not in payload:
        raise Invalid("send the challenge's nonce and the wallet's signature",
                      errors={key: ["required"] for key in ("nonce", "signature") if key not in payload})
    return payload


@bp.post("/login/wallet/<any(evm,solana,cosmos):provider>/challenge")
@public_page
@auth_limit()
def wallet_challenge(provider: str):
    """The message the wallet at ``address`` is to sign (for signing in and for linking alike)."""
    try:
        return jsonify(challenge_for(provider))
    except ServiceError as error:
        return json_refusal(error)


@bp.post("/login/wallet/<any(evm,solana,cosmos):provider>/verify")
@public_page
@auth_limit()
def wallet_verify(provider: str):
    """Sign in with a signed challenge; a wallet seen for the first time gets a new account."""
    try:
        user = wallet_signin.sign_in(provider, **proof())
    except ServiceError as error:
        db.session.rollback()
        return json_refusal(error)
    open_session(user)
    return jsonify({"redirect": safe_next(request.args.get("next"))})


# -- invitations ---------------------------------------------------------------------------------------------------

class AcceptForm(PageForm):
    """Only the CSRF token."""


@bp.route("/invitations/<token>", methods=["GET", "POST"])
@public_page
def invitation(token: str):
    """An invitation's link: sign up or sign in first (coming back here), then accept it with one button."""
    form = AcceptForm()
    if current_user.is_authenticated and form.validate_on_submit():
        with show_errors(form):
            accepted: Invitation = invitations.accept_invitation(token, current_user._get_current_object())
            switch_to(current_user.id, accepted.organization_id, accepted.workspace_id)
            flash(f"You joined {accepted.organization.name}.", "success")
            return redirect(url_for("web.home.app"))
    return render_template("auth/invitation.html", form=form, token=token), form_status(form)
