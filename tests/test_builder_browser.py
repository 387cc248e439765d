"""The builder's shell in a real browser (Debian's Chromium driven by Playwright) against a live server with CSRF
on: signing up into the first-run guide, signing out and in, a refused password beside its field, changing the
password, MetaMask, Phantom and Keplr through injected wallets that sign with real keys, the switcher, and every
page at 360 px and at desktop width checked by axe-core (0 serious or critical violations), for horizontal
scrolling, console errors and the favicon.

The injected wallets are the standard provider objects (``window.ethereum``, ``window.phantom.solana``,
``window.keplr``) whose signing calls reach Python through ``page.expose_function``, where eth-account, PyNaCl and
coincurve sign for real; the page cannot tell them from the extensions.

Screenshots go to tests/screenshots/ (git-ignored; PRIVEX_SCREENSHOTS=folder puts them elsewhere).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from eth_account import Account

from privex.extensions import db
from privex.models import Organization, User, Workspace
from privex.services import invitations, registration
from tests.test_wallets import cosmos_wallet, evm_sign, keplr_sign, solana_sign, solana_wallet
from tests.test_widget_browser import browser, live  # noqa: F401 (fixtures)

pytestmark = pytest.mark.slow
sync_api = pytest.importorskip("playwright.sync_api")
axe_package = pytest.importorskip("axe_playwright_python")
expect = sync_api.expect

AXE = Path(axe_package.__file__).with_name("axe.min.js")
SERIOUS = ("serious", "critical")
PASSWORD = "Sup3r-secret!"
PHONE, DESKTOP = {"width": 360, "height": 800}, {"width": 1280, "height": 900}
SHOTS = Path(os.environ.get("PRIVEX_SCREENSHOTS") or Path(__file__).with_name("screenshots"))


class Tab:
    """A page in its own browser context that remembers console errors, and checks what every page must be."""

    def __init__(self, browser, viewport=DESKTOP, wallets: dict | None = None, permissions=()):
        self.context = browser.new_context(viewport=viewport, permissions=list(permissions))
        self.width = viewport["width"]
        self.page = self.context.new_page()
        self.problems: list[str] = []
        self.expected_statuses: set[int] = set()
        self.page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        self.page.on("console", self._console)
        if wallets:
            install_wallets(self.page, **wallets)

    def _console(self, message):
        if message.type != "error":
            return
        status = re.search(r"status of (\d{3})", message.text)
        if status and int(status.group(1)) in self.expected_statuses:
            return  # the page under test answers that status on purpose (a refused password, a 404 page)
        self.problems.append(f"console: {message.text}")

    def check(self, name: str) -> dict:
        """axe-core, horizontal scrolling and the favicon on the page as it is now; saves a screenshot."""
        page = self.page
        page.add_script_tag(path=str(AXE))
        result = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
        found = [{"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
                 for v in result["violations"] if v["impact"] in SERIOUS]
        wide = page.evaluate("() => [document.scrollingElement.scrollWidth, window.innerWidth]")
        icon = page.evaluate("""async () => {
            const link = document.querySelector('link[rel~="icon"]');
            if (!link) return 'no <link rel=icon>';
            const response = await fetch(link.href);
            return response.ok && (response.headers.get('content-type') || '').startsWith('image/') ? 'ok'
                : 'icon answered ' + response.status;
        }""")
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}-{self.width}.png"), full_page=True)
        problems = {}
        if found:
            problems["axe"] = found
        if wide[0] > wide[1]:
            problems["horizontal scroll"] = wide
        if icon != "ok":
            problems["favicon"] = icon
        return problems

    def close(self):
        self.context.close()


def install_wallets(page, *, evm=None, solana=None, cosmos=None) -> None:
    """Inject the providers a wallet extension would, signing with the given keys (Python, real signatures)."""
    script = []
    if evm is not None:
        page.expose_function("__walletEvmSign", lambda hex_message: evm_sign(
            evm.key, bytes.fromhex(hex_message[2:]).decode("utf-8")))
        script.append("""
          window.ethereum = {isMetaMask: true, request: async ({method, params}) => {
            if (method === 'eth_requestAccounts' || method === 'eth_accounts') return [%s];
            if (method === 'eth_chainId') return '0x1';
            if (method === 'personal_sign') return await window.__walletEvmSign(params[0]);
            throw Object.assign(new Error('unsupported method ' + method), {code: 4200});
          }};""" % json.dumps(evm.address.lower()))
    if solana is not None:
        solana_key, solana_address = solana
        page.expose_function("__walletSolanaSign",
                             lambda data: list(solana_sign(solana_key, bytes(data).decode("utf-8"))))
        script.append("""
          (() => {
            const publicKey = {toString: () => %(address)s, toBase58: () => %(address)s};
            const provider = {isPhantom: true, publicKey: null,
              connect: async () => { provider.publicKey = publicKey; return {publicKey}; },
              signMessage: async (bytes, display) => ({
                signature: new Uint8Array(await window.__walletSolanaSign(Array.from(bytes))), publicKey})};
            window.phantom = {solana: provider};
            window.solana = provider;
          })();""" % {"address": json.dumps(solana_address)})
    if cosmos is not None:
        cosmos_key, cosmos_address = cosmos
        page.expose_function("__walletKeplrSign", lambda signer, data: keplr_sign(cosmos_key, data, signer))
        script.append("""
          window.keplr = {
            enable: async (chainId) => undefined,
            getKey: async (chainId) => ({name: 'test', algo: 'secp256k1', bech32Address: %s,
                                         isNanoLedger: false}),
            signArbitrary: async (chainId, signer, data) => {
              const [signature, key] = await window.__walletKeplrSign(signer, data);
              return {signature, pub_key: {type: 'tendermint/PubKeySecp256k1', value: key}};
            }};""" % json.dumps(cosmos_address))
    page.add_init_script("\n".join(script))


def make_person(app, email: str, name: str):
    with app.app_context():
        user = registration.sign_up(email, PASSWORD, name)
        db.session.commit()
        workspace = db.session.query(Workspace).filter_by(created_by_id=user.id).one()
        return user.id, workspace.organization_id, workspace.id


def sign_in(page, base: str, email: str, password: str = PASSWORD) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()


# -- journeys ------------------------------------------------------------------------------------------------------

def test_sign_up_first_run_sign_out_sign_in_and_change_the_password(live, browser):  # noqa: F811
    app, base = live
    tab = Tab(browser)
    page = tab.page
    problems = {}

    page.goto(base)
    problems["landing"] = tab.check("landing")
    page.get_by_role("link", name="Create your account").click()
    expect(page).to_have_url(f"{base}/signup")
    expect(page.get_by_text("at least 8 characters, with an upper-case letter")).to_be_visible()
    page.get_by_label("Email").fill("ada@example.com")
    page.get_by_label("Password").fill("weak")
    tab.expected_statuses = {422}
    page.get_by_role("button", name="Create account").click()
    error = page.locator("#password-error")
    expect(error).to_contain_text("missing: 8 characters, an upper-case letter, a digit, a symbol")
    expect(page.get_by_label("Password")).to_be_focused()  # where to fix it
    problems["signup refused"] = tab.check("signup-refused")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Your name").fill("Ada Lovelace")
    page.get_by_role("button", name="Create account").click()

    expect(page).to_have_url(f"{base}/app")
    expect(page.get_by_role("heading", name="Let’s build your first chatbot")).to_be_visible()
    guide = page.locator("ol.first-run > li")
    expect(guide).to_have_count(3)
    expect(guide.nth(0)).to_contain_text("Add your documents")
    expect(page.get_by_role("link", name="Add your documents")).to_have_attribute("href", "/knowledge")
    expect(page.get_by_label("Working in")).to_contain_text("Ada Lovelace's organization › Default")
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Home")).to_have_attribute(
        "aria-current", "page")
    problems["first run"] = tab.check("app-first-run")

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{base}/")
    tab.expected_statuses = {401}
    sign_in(page, base, "ada@example.com", "Wrong-passw0rd!")
    expect(page.locator("#password-error")).to_have_text("Wrong email or password.")
    expect(page.get_by_label("Password")).to_have_attribute("aria-invalid", "true")
    described = page.get_by_label("Password").get_attribute("aria-describedby")
    assert "password-error" in described.split()
    problems["login refused"] = tab.check("login-refused")
    sign_in(page, base, "ada@example.com")
    expect(page).to_have_url(f"{base}/app")

    page.get_by_role("link", name="Your account: Ada Lovelace").click()
    expect(page).to_have_url(f"{base}/account")
    page.get_by_label("Current password").fill("Not-it-123!")
    page.get_by_label("New password", exact=True).fill("N3w-secret!")
    page.get_by_label("New password again").fill("N3w-secret!")
    page.get_by_role("button", name="Change password").click()
    expect(page.locator("#current_password-error")).to_have_text("Wrong password.")
    problems["password refused"] = tab.check("account-password-refused")
    page.get_by_label("Current password").fill(PASSWORD)
    page.get_by_label("New password", exact=True).fill("N3w-secret!")
    page.get_by_label("New password again").fill("N3w-secret!")
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_role("status").filter(has_text="Your password was changed.")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, base, "ada@example.com", "N3w-secret!")
    expect(page).to_have_url(f"{base}/app")
    tab.close()
    assert not tab.problems, tab.problems
    assert not {k: v for k, v in problems.items() if v}, json.dumps(problems, indent=1)


def test_wallets_sign_in_link_a_second_one_and_say_when_none_is_installed(live, browser):  # noqa: F811
    app, base = live
    metamask, phantom, keplr = Account.create(), solana_wallet(), cosmos_wallet()
    tab = Tab(browser, wallets={"evm": metamask, "solana": phantom, "cosmos": keplr})
    page = tab.page
    problems = {}

    page.goto(f"{base}/login")
    page.get_by_role("button", name="Sign in with MetaMask").click()
    expect(page).to_have_url(f"{base}/app")  # a new wallet: a new account with its own organization
    expect(page.get_by_label("Working in")).to_contain_text(f"EVM {metamask.address[:6]}…{metamask.address[-4:]}")

    page.goto(f"{base}/account")
    page.get_by_role("button", name="Link Phantom").click()
    expect(page.get_by_role("status").filter(has_text="linked: you can sign in with it too")).to_be_visible()
    identities = page.locator(".identities")
    expect(identities).to_contain_text("Ethereum wallet (MetaMask)")
    expect(identities).to_contain_text(metamask.address)
    expect(identities).to_contain_text("Solana wallet (Phantom)")
    expect(identities).to_contain_text(phantom[1])
    problems["account with wallets"] = tab.check("account-wallets")

    page.get_by_role("button", name="Sign out").click()
    page.goto(f"{base}/login")
    page.get_by_role("button", name="Sign in with Phantom").click()
    expect(page).to_have_url(f"{base}/app")
    page.goto(f"{base}/account")
    expect(page.locator(".identities")).to_contain_text(metamask.address)  # the same account as MetaMask's

    page.get_by_role("button", name="Sign out").click()
    page.goto(f"{base}/login")
    page.get_by_role("button", name="Sign in with Keplr").click()
    expect(page).to_have_url(f"{base}/app")
    page.goto(f"{base}/account")
    expect(page.locator(".identities")).to_contain_text(keplr[1])
    expect(page.locator(".identities")).not_to_contain_text(metamask.address)
    tab.close()

    bare = Tab(browser)  # a browser with no wallet extension
    bare.page.goto(f"{base}/login")
    for name, advice in (("MetaMask", "Install MetaMask"), ("Phantom", "Install Phantom"), ("Keplr", "Install Keplr")):
        bare.page.get_by_role("button", name=f"Sign in with {name}").click()
        expect(bare.page.locator(".wallet-status")).to_contain_text(advice)
    expect(bare.page.locator(".wallet-status")).to_have_attribute("role", "status")
    problems["no wallet"] = bare.check("login-no-wallet")
    bare.close()
    assert not tab.problems and not bare.problems, tab.problems + bare.problems
    assert not {k: v for k, v in problems.items() if v}, json.dumps(problems, indent=1)


def test_the_switcher_switches_organization_and_workspace(live, browser):  # noqa: F811
    app, base = live
    olga_id, olga_org, olga_workspace = make_person(app, "olga@example.com", "Olga")
    make_person(app, "vic@example.com", "Vic")
    tab = Tab(browser, viewport=PHONE)
    page = tab.page
    sign_in(page, base, "vic@example.com")
    expect(page.get_by_label("Working in")).to_contain_text("Vic's organization › Default")
    with app.app_context():
        organization = db.session.get(Organization, olga_org)
        owner = db.session.get(User, olga_id)
        invitations.invite_or_add(organization, owner, "owner", "vic@example.com", "member",
                                  workspace_id=olga_workspace, workspace_role="viewer")
    page.goto(f"{base}/knowledge")
    page.get_by_label("Working in").select_option(label="Olga's organization › Default")
    page.get_by_role("button", name="Switch").click()
    expect(page).to_have_url(f"{base}/knowledge")  # the same area, in the other workspace
    expect(page.get_by_label("Working in")).to_have_value(f"{olga_org}/{olga_workspace}")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Home").click()
    expect(page.get_by_text("Your role here is viewer")).to_be_visible()
    problems = tab.check("app-viewer-switched")
    tab.close()
    assert not tab.problems, tab.problems
    assert not problems, json.dumps(problems, indent=1)


def test_every_page_at_phone_and_desktop_width(live, browser):  # noqa: F811
    """Each page of the shell: axe-core finds no serious or critical violation, nothing scrolls sideways, the
    console stays clean and the favicon is there, at 360 px and at 1280 px."""
    app, base = live
    owner_id, organization_id, workspace_id = make_person(app, "olga@example.com", "Olga Maria Konstantinopoulou")
    with app.app_context():
        organization = db.session.get(Organization, organization_id)
        owner = db.session.get(User, owner_id)
        _, _, token = invitations.invite_or_add(organization, owner, "owner", "new@example.com", "member")
    signed_out = {"landing": "/", "signup": "/signup", "login": "/login", "invitation-signed-out": f"/invitations/{token}",
                  "not-found-signed-out": "/no-such-page"}
    signed_in = {"app": "/app", "knowledge": "/knowledge", "chatbots": "/chatbots", "team": "/team",
                 "account": "/account", "invitation-signed-in": f"/invitations/{token}",
                 "not-found": "/knowledge/no-such-thing"}
    problems = {}
    for viewport in (PHONE, DESKTOP):
        tab = Tab(browser, viewport=viewport)
        tab.expected_statuses = {404}
        for name, path in signed_out.items():
            tab.page.goto(base + path)
            problems[f"{name} {viewport['width']}"] = tab.check(name)
        sign_in(tab.page, base, "olga@example.com")
        for name, path in signed_in.items():
            tab.page.goto(base + path)
            problems[f"{name} {viewport['width']}"] = tab.check(name)
        tab.close()
        problems[f"console {viewport['width']}"] = tab.problems
    assert not {k: v for k, v in problems.items() if v}, json.dumps(problems, indent=1)


def test_htmx_requests_carry_the_csrf_token(live, browser):  # noqa: F811
    """htmx is served from our origin and sends the session's token from hx-headers: a POST it makes passes CSRF."""
    app, base = live
    make_person(app, "olga@example.com", "Olga")
    tab = Tab(browser)
    page = tab.page
    sign_in(page, base, "olga@example.com")
    expect(page).to_have_url(f"{base}/app")
    page.wait_for_function("() => typeof window.htmx === 'object'")  # a deferred script of our own origin
    token = page.locator('meta[name="csrf-token"]').get_attribute("content")
    with page.expect_response(lambda response: response.url.endswith("/context")) as answered:
        page.evaluate("""() => htmx.ajax('POST', '/context', {target: 'main', swap: 'none',
                                                              values: {context: 'nonsense'}})""")
    request = answered.value.request
    assert request.headers.get("x-csrftoken") == token
    assert answered.value.status == 422  # past CSRF, refused by the switch itself
    tab.close()


MACROS_PAGE = """{% extends "base.html" %}{% import "macros/forms.html" as forms %}
{% block content %}
<h1>Knowledge bases</h1>
<form method="post" novalidate class="stack">
  {{ form.hidden_tag() }}{{ forms.form_errors(form) }}{{ forms.field(form.name) }}{{ forms.field(form.public) }}
  {{ forms.submit("Save") }}
</form>
{{ forms.confirm("/probe/destroy", "Delete", "Delete the knowledge base “Handbook”?", "Its 12 documents go too.") }}
<ul>{% for user in page.items %}<li>{{ user.username }}</li>{% endfor %}</ul>
{{ forms.pagination(page) }}
{{ forms.empty_state("No chatbots yet", "Build one on your knowledge.", "/chatbots", "Build a chatbot") }}
<pre id="snippet">&lt;script src="/widget.js" data-bot="bot_123" async&gt;&lt;/script&gt;</pre>
{{ forms.copy_button("snippet") }}
{% endblock %}"""


def test_the_form_macros_every_area_uses(live, browser):  # noqa: F811
    """field + show_errors, confirm (a <dialog>, CSRF included), pagination, empty state and copy, on a probe page
    the way an area's page uses them."""
    import sqlalchemy as sa
    from flask import flash, redirect, render_template_string
    from wtforms import BooleanField, StringField

    from privex.services.errors import Conflict
    from privex.web.forms import PageForm, form_status, show_errors

    app, base = live

    class ProbeForm(PageForm):
        name = StringField("Name", description="What your team calls it.")
        public = BooleanField("Anyone in the workspace may use it")

    @app.route("/probe/macros", methods=["GET", "POST"])
    def probe_macros():
        form = ProbeForm()
        if form.validate_on_submit():
            with show_errors(form):
                raise Conflict("a knowledge base with this name exists", errors={"config": {"name": ["taken"]}})
        page = db.paginate(sa.select(User).order_by(User.username), per_page=1)
        return render_template_string(MACROS_PAGE, form=form, page=page), form_status(form)

    @app.post("/probe/destroy")
    def probe_destroy():
        flash("Deleted the knowledge base.", "success")
        return redirect("/probe/macros?page=2")

    make_person(app, "ada@example.com", "Ada")
    make_person(app, "bob@example.com", "Bob")
    tab = Tab(browser, viewport=PHONE, permissions=["clipboard-read", "clipboard-write"])
    page = tab.page
    problems = {}
    page.goto(f"{base}/probe/macros")
    expect(page.get_by_text("Page 1 of 2")).to_be_visible()
    expect(page.get_by_role("link", name="Build a chatbot")).to_have_attribute("href", "/chatbots")
    page.get_by_label("Name").fill("Handbook")
    tab.expected_statuses = {409}
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#name-error")).to_have_text("Taken.")
    expect(page.get_by_label("Name")).to_be_focused()
    problems["refused"] = tab.check("macros-refused")

    dialog = page.get_by_role("dialog", name="Delete the knowledge base “Handbook”?")
    expect(dialog).to_be_hidden()
    page.get_by_role("button", name="Delete…").click()
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Its 12 documents go too.")
    problems["dialog open"] = tab.check("macros-confirm")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    page.get_by_role("button", name="Delete…").click()
    dialog.get_by_role("button", name="Delete", exact=True).click()  # a real POST with the CSRF token
    expect(page).to_have_url(f"{base}/probe/macros?page=2")
    expect(page.get_by_role("status").filter(has_text="Deleted the knowledge base.")).to_be_visible()
    expect(page.get_by_text("Page 2 of 2")).to_be_visible()
    page.get_by_role("link", name="← Previous").click()
    expect(page).to_have_url(f"{base}/probe/macros?page=1")

    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_role("status").filter(has_text="Copied.")).to_be_visible()
    assert page.evaluate("() => navigator.clipboard.readText()") == \
        '<script src="/widget.js" data-bot="bot_123" async></script>'
    tab.close()
    assert not tab.problems, tab.problems
    assert not {k: v for k, v in problems.items() if v}, json.dumps(problems, indent=1)
