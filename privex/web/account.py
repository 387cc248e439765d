"""The signed-in person's account: the ways they sign in (email, wallets), changing the password (the rule and
messages of ``accounts.change_password``, as on the API: every other session is signed out, this one stays), and
linking another wallet (``wallet_signin.link``, from ``static/wallet.js``)."""

from __future__ import annotations

from flask import Blueprint, flash, jsonify, redirect, render_template, url_for
from flask_login import current_user, login_user
from wtforms import PasswordField
from wtforms.validators import DataRequired, EqualTo, Length

from privex.extensions import db
from privex.services import accounts, wallet_signin
from privex.services.errors import ServiceError
from privex.web.auth import WALLETS, auth_limit, json_refusal, proof
from privex.web.forms import PageForm, form_status, show_errors

bp = Blueprint("account", __name__, url_prefix="/account")

PROVIDER_NAMES = {"email": "Email and password", "evm": "Ethereum wallet (MetaMask)",
                  "solana": "Solana wallet (Phantom)", "cosmos": "Cosmos wallet (Keplr)"}


class PasswordForm(PageForm):
    current_password = PasswordField("Current password", validators=[DataRequired(), Length(max=256)])
    new_password = PasswordField("New password", validators=[DataRequired(), Length(max=256)],
                                 description=f"Use {accounts.PASSWORD_RULE}.")
    repeat_password = PasswordField("New password again", validators=[
        DataRequired(), EqualTo("new_password", message="the two new passwords differ")])


def page(form: PasswordForm, status: int = 200):
    user = current_user
    identities = sorted(user.identities, key=lambda identity: (identity.provider != "email", identity.created_at))
    return render_template("account/index.html", form=form, identities=identities, names=PROVIDER_NAMES,
                           wallets=WALLETS, has_password=user.email is not None), status


@bp.get("")
def index():
    return page(PasswordForm(formdata=None))


@bp.post("/password")
@auth_limit()
def password():
    form = PasswordForm()
    user = current_user._get_current_object()
    if user.email is not None and form.validate_on_submit():
        with show_errors(form):
            revoked = accounts.change_password(user, form.current_password.data, form.new_password.data)
            login_user(user)  # this browser stays signed in, with the new password's stamp
            others = f" {revoked} other session(s) were signed out." if revoked else ""
            flash(f"Your password was changed.{others}", "success")
            return redirect(url_for(".index"))
    return page(form, form_status(form))


@bp.post("/wallets/<any(evm,solana,cosmos):provider>/link")
@auth_limit()
def link_wallet(provider: str):
    """Add a wallet the person proved they hold (a signed challenge) to their account."""
    try:
        identity, created = wallet_signin.link(current_user._get_current_object(), provider, **proof())
    except ServiceError as error:
        db.session.rollback()
        return json_refusal(error)
    if created:
        flash(f"{WALLETS[provider]} wallet {identity.provider_id} linked: you can sign in with it too.", "success")
    else:
        flash("That wallet was already linked to your account.", "info")
    return jsonify({"redirect": url_for(".index")}), 201 if created else 200
