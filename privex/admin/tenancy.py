"""Tenants in the back office, written through ``privex.services.organizations``: organizations (with an owner and
a default workspace), workspaces, and members of each, keeping the invariants the API keeps (an organization always
has an owner and a workspace, plan limits hold). Invitations carry a token shown once, so they are read-only here.

The operator acts as an organization owner would; the service functions commit.
"""

from __future__ import annotations

from flask_login import current_user
from wtforms import SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired

from privex.admin.forms import AdminForm, organization_picker, user_picker, workspace_picker
from privex.admin.views import ReadOnlyView, ServiceView, empty_to_none
from privex.extensions import db
from privex.models import Workspace
from privex.models.tenancy import ORGANIZATION_ROLES, SUBSCRIPTION_TIERS, WORKSPACE_ROLES
from privex.services import organizations, workspaces


def choices(values) -> list[SelectChoice]:
    return [SelectChoice(value) for value in values]


class OrganizationEditForm(AdminForm):
    name = StringField("Name")
    billing_email = StringField("Billing email")
    subscription_tier = SelectField("Plan", choices=choices(SUBSCRIPTION_TIERS))


class OrganizationCreateForm(OrganizationEditForm):
    owner = user_picker("Owner", validators=[InputRequired()],
                        description="Becomes the owner and the admin of its default workspace.")


class OrganizationView(ServiceView):
    column_list = ("name", "subscription_tier", "billing_email", "is_personal", "created_by_id", "created_at")
    column_labels = {"subscription_tier": "Plan", "created_by_id": "Created by"}
    column_searchable_list = ("name", "billing_email")
    column_filters = ("name", "subscription_tier", "is_personal")
    column_default_sort = ("created_at", True)
    form_create_rules = ("name", "owner", "billing_email", "subscription_tier")

    def get_create_form(self):
        return OrganizationCreateForm

    def get_edit_form(self):
        return OrganizationEditForm

    def create(self, form):
        details = self.details(form)
        organization, _ = organizations.create_organization(form.owner.data, details["name"],
                                                            billing_email=details["billing_email"])
        organizations.update_organization(organization, {"subscription_tier": details["subscription_tier"]})
        db.session.commit()
        return organization

    @staticmethod
    def details(form) -> dict:
        return {"name": form.name.data, "billing_email": empty_to_none(form.billing_email.data),
                "subscription_tier": form.subscription_tier.data}

    def update(self, form, row) -> None:
        organizations.update_organization(row, self.details(form))
        db.session.commit()

    def delete(self, row) -> None:
        organizations.delete_organization(row)


class OrganizationMemberForm(AdminForm):
    role = SelectField("Role", choices=choices(ORGANIZATION_ROLES))


class OrganizationMemberCreateForm(OrganizationMemberForm):
    organization = organization_picker(validators=[InputRequired()])
    user = user_picker(validators=[InputRequired()])


class OrganizationMemberView(ServiceView):
    column_list = ("organization_id", "user_id", "role", "invited_by_id", "created_at")
    column_filters = ("role",)
    form_create_rules = ("organization", "user", "role")
    error_fields = {"user_id": "user"}

    def get_create_form(self):
        return OrganizationMemberCreateForm

    def get_edit_form(self):
        return OrganizationMemberForm

    def create(self, form):
        member = organizations.add_organization_member(form.organization.data, form.user.data, form.role.data,
                                                       current_user.id)
        db.session.commit()
        return member

    def update(self, form, row) -> None:
        organizations.change_organization_role(row, form.role.data, acting_role="owner")
        db.session.commit()

    def delete(self, row) -> None:
        organizations.remove_organization_member(row, acting_role="owner", acting_user_id=current_user.id)
        db.session.commit()


class WorkspaceEditForm(AdminForm):
    name = StringField("Name")
    description = TextAreaField("Description")


class WorkspaceCreateForm(WorkspaceEditForm):
    organization = organization_picker(validators=[InputRequired()])
    owner = user_picker("Owner", validators=[InputRequired()], description="Becomes the workspace's admin.")


class WorkspaceView(ServiceView):
    column_list = ("name", "organization_id", "is_default", "owner_id", "description", "created_at")
    column_searchable_list = ("name",)
    column_filters = ("name", "is_default")
    column_default_sort = ("created_at", True)
    form_create_rules = ("organization", "name", "description", "owner")

    def get_create_form(self):
        return WorkspaceCreateForm

    def get_edit_form(self):
        return WorkspaceEditForm

    def create(self, form):
        details = {"name": form.name.data, "description": empty_to_none(form.description.data)}
        workspace = workspaces.add_workspace(form.organization.data, form.owner.data, details["name"],
                                             description=details["description"])
        db.session.commit()
        return workspace

    def update(self, form, row) -> None:
        workspaces.update_workspace(row, {"name": form.name.data,
                                          "description": empty_to_none(form.description.data)})

    def delete(self, row) -> None:
        workspaces.delete_workspace(row)


class WorkspaceMemberForm(AdminForm):
    role = SelectField("Role", choices=choices(WORKSPACE_ROLES))


class WorkspaceMemberCreateForm(WorkspaceMemberForm):
    workspace = workspace_picker(validators=[InputRequired()])
    user = user_picker(validators=[InputRequired()])


class WorkspaceMemberView(ServiceView):
    column_list = ("workspace_id", "user_id", "role", "created_at")
    column_filters = ("role",)
    form_create_rules = ("workspace", "user", "role")

    def get_create_form(self):
        return WorkspaceMemberCreateForm

    def get_edit_form(self):
        return WorkspaceMemberForm

    def create(self, form):
        return workspaces.add_person(form.workspace.data, form.user.data, form.role.data, current_user.id)

    def update(self, form, row) -> None:
        workspaces.change_role(db.session.get(Workspace, row.workspace_id), row.user_id, form.role.data)

    def delete(self, row) -> None:
        workspaces.remove_member(db.session.get(Workspace, row.workspace_id), row.user_id)


class InvitationView(ReadOnlyView):
    column_list = ("email", "organization_id", "role", "workspace_id", "workspace_role", "expires_at",
                   "accepted_at", "revoked_at")
    column_searchable_list = ("email",)
    column_filters = ("role", "accepted_at", "revoked_at")
