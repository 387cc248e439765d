"""``/team/plan``: the organization's plan, its limits beside what is used (members with pending invitations,
workspaces, chatbots), and the tokens its chatbots' models used over the last 30 days, per chatbot and per day (an
inline SVG chart with the same figures in a table). Owners and admins of the organization see it
(``org.billing.read``); owners change the billing email; the plan itself is changed by the platform's operator.
"""

from __future__ import annotations

from flask import render_template
from flask_login import current_user
from wtforms import EmailField

from privex.services import analytics, plans
from privex.services import organizations as service
from privex.web.forms import PageForm, form_status, show_errors
from privex.web.team import bp, common

DAYS = 30
LIMITED = {"members": "Members (with pending invitations)", "workspaces": "Workspaces", "chatbots": "Chatbots",
           "chatflows": "Chatflows"}


class BillingForm(PageForm):
    billing_email = EmailField("Billing email", description="Where the operator sends anything about the plan.")


def chart(per_day: list[dict]) -> dict:
    """The per-day bars of the SVG (x, y, height in a 0-100 box) and what the chart says in words."""
    totals = [day["prompt_tokens"] + day["completion_tokens"] for day in per_day]
    highest = max(totals, default=0)
    width = 100 / max(len(per_day), 1)
    bars = []
    for index, (day, total) in enumerate(zip(per_day, totals)):
        height = round(total / highest * 100, 2) if highest else 0
        bars.append({"x": round(index * width + width * 0.1, 3), "width": round(width * 0.8, 3),
                     "y": round(100 - height, 2), "height": height, "day": day["day"], "total": total})
    busiest = max(zip(totals, [day["day"] for day in per_day]), default=(0, None))
    return {"bars": bars, "highest": highest, "total": sum(totals), "busiest": busiest}


def render(*, billing: BillingForm | None = None, problem: str | None = None) -> str:
    organization = common.organization("org.billing.read")
    per_day = analytics.organization_tokens_per_day(organization, DAYS)
    usage = analytics.organization_usage(organization, DAYS)
    biggest = max((bot["prompt_tokens"] + bot["completion_tokens"] for bot in usage["by_chatbot"]), default=0)
    used = plans.usage(organization.id)
    used["members"] += used["pending_invitations"]  # a pending invitation holds a seat
    return render_template(
        "team/plan.html", organization=organization, limits=plans.LIMITS[organization.subscription_tier],
        used=used, limited=LIMITED, usage=usage, biggest=biggest, per_day=per_day, chart=chart(per_day), days=DAYS,
        billing=billing or BillingForm(formdata=None, billing_email=organization.billing_email), problem=problem)


@bp.get("/plan")
def plan():
    return render()


@bp.post("/plan")
def billing():
    organization = common.organization("org.billing.update")
    form = BillingForm()
    if form.validate_on_submit():
        with show_errors(form):
            service.update_billing(organization, {"billing_email": form.billing_email.data or ""},
                                   by_operator=current_user.is_superuser)
            return common.done("The billing email was saved.", "web.team.plan")
    return render(billing=form), form_status(form)
