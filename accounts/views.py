"""Console pages for workspaces, members, invitations and API keys (HTML; the REST twins are in accounts.api).

Every workspace page is reached through the signed-in user's membership (`workspace_page`); an id that is not
theirs is a 404. Domain errors from services become a message on the page, never a crash.
"""

from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from accounts import api_keys, navigation, selectors, services
from accounts.errors import WorkspaceNotFound
from accounts.forms import (
    ApiKeyForm,
    ApiKeyRotateForm,
    InvitationForm,
    MemberRoleForm,
    WorkspaceDeleteForm,
    WorkspaceNameForm,
)
from accounts.models import Membership, Role, User
from accounts.navigation import placeholder
from core.errors import NotFound, ToolportError

SESSION_WORKSPACE = "workspace_id"

View = Callable[..., HttpResponseBase]


class SignedInRequest(HttpRequest):
    """A request behind login_required: its user is a real account."""

    user: User


def workspace_page(view: View) -> View:
    """Resolve `workspace_id` to the user's membership (404 otherwise) and remember it as the current workspace."""

    @login_required
    @wraps(view)
    def wrapper(request: SignedInRequest, workspace_id: Any, *args: Any, **kwargs: Any) -> HttpResponseBase:
        try:
            membership = selectors.membership_get(user=request.user, workspace_id=workspace_id)
        except WorkspaceNotFound as error:
            raise Http404(error.message) from error
        request.session[SESSION_WORKSPACE] = str(membership.workspace_id)
        request.membership = membership  # type: ignore[attr-defined]  # read by the console context processor
        return view(request, membership, *args, **kwargs)

    return wrapper


def _act(request: HttpRequest, action: Callable[[], Any], success: str, back: str) -> HttpResponse:
    """Run a service call; show its error or the success message, then go back."""
    try:
        action()
    except NotFound as error:
        raise Http404(error.message) from error
    except ToolportError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, success)
    return redirect(back)


def _section_url(membership: Membership, name: str) -> str:
    return reverse(f"console:{name}", args=[membership.workspace_id])


# --- home, dashboard, workspaces ------------------------------------------------------------------------------------


@login_required
def console_home(request: SignedInRequest) -> HttpResponse:
    """Open the workspace used last, else the first one, else offer to create one."""
    memberships = list(selectors.membership_list_for_user(user=request.user))
    if not memberships:
        return redirect("console:workspace_create")
    remembered = request.session.get(SESSION_WORKSPACE)
    chosen = next((m for m in memberships if str(m.workspace_id) == remembered), memberships[0])
    return redirect("console:dashboard", chosen.workspace_id)


@workspace_page
def dashboard(request: SignedInRequest, membership: Membership) -> HttpResponse:
    workspace = membership.workspace
    context = {
        "title": "Dashboard",
        "section": "dashboard",
        "member_count": selectors.member_list(workspace=workspace).count(),
        "active_key_count": api_keys.active_keys(selectors.api_key_list(workspace=workspace)).count(),
        "site_url": request.build_absolute_uri("/").rstrip("/"),
        "panels": navigation.dashboard_panels(request, membership),
    }
    return render(request, "accounts/dashboard.html", context)


@workspace_page
def upcoming_section(request: SignedInRequest, membership: Membership, section: str) -> HttpResponse:
    upcoming = placeholder(section)
    if upcoming is None:
        raise Http404("No such console section.")
    context = {"title": upcoming.label, "section": section, "description": upcoming.coming_soon}
    return render(request, "console/coming_soon.html", context)


@login_required
def workspace_create(request: SignedInRequest) -> HttpResponse:
    form = WorkspaceNameForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            workspace = services.workspace_create(user=request.user, name=form.cleaned_data["name"], request=request)
        except ToolportError as error:
            form.add_error("name", error.message)
        else:
            messages.success(request, f"Workspace {workspace.name} created.")
            return redirect("console:dashboard", workspace.pk)
    return render(request, "accounts/workspace_create.html", {"form": form, "title": "New workspace"})


# --- settings: name, members, invitations, deletion ----------------------------------------------------------------


@workspace_page
def workspace_settings(request: SignedInRequest, membership: Membership) -> HttpResponse:
    workspace = membership.workspace
    members = list(selectors.member_list(workspace=workspace))
    context = {
        "title": "Settings",
        "section": "settings",
        "rename_form": WorkspaceNameForm(initial={"name": workspace.name}),
        "invite_form": InvitationForm(),
        "delete_form": WorkspaceDeleteForm(),
        "members": members,
        "invitations": selectors.invitation_list(workspace=workspace),
        "roles": Role.choices,
        "can_manage": membership.role_rank >= Role.ADMIN.rank,
        "is_owner": membership.role == Role.OWNER,
    }
    return render(request, "accounts/settings.html", context)


@require_POST
@workspace_page
def workspace_rename(request: SignedInRequest, membership: Membership) -> HttpResponse:
    form = WorkspaceNameForm(request.POST)
    name = form.cleaned_data["name"] if form.is_valid() else ""
    return _act(
        request,
        lambda: services.workspace_rename(actor=membership, name=name, request=request),
        "Workspace renamed.",
        _section_url(membership, "settings"),
    )


@require_POST
@workspace_page
def workspace_delete(request: SignedInRequest, membership: Membership) -> HttpResponse:
    name = membership.workspace.name
    try:
        services.workspace_delete(actor=membership, confirm_name=request.POST.get("confirm_name", ""), request=request)
    except ToolportError as error:
        messages.error(request, error.message)
        return redirect(_section_url(membership, "settings"))
    request.session.pop(SESSION_WORKSPACE, None)
    messages.success(request, f"Workspace {name} and everything in it were deleted.")
    return redirect("console:home")


@require_POST
@workspace_page
def member_role(request: SignedInRequest, membership: Membership, member_id: Any) -> HttpResponse:
    form = MemberRoleForm(request.POST)
    role = form.cleaned_data["role"] if form.is_valid() else request.POST.get("role", "")

    def change() -> None:
        member = selectors.member_get(workspace=membership.workspace, membership_id=member_id)
        services.membership_change_role(actor=membership, member=member, role=role, request=request)

    return _act(request, change, "Role changed.", _section_url(membership, "settings"))


@require_POST
@workspace_page
def member_remove(request: SignedInRequest, membership: Membership, member_id: Any) -> HttpResponse:
    def remove() -> None:
        member = selectors.member_get(workspace=membership.workspace, membership_id=member_id)
        services.membership_remove(actor=membership, member=member, request=request)

    return _act(request, remove, "Member removed.", _section_url(membership, "settings"))


@require_POST
@workspace_page
def workspace_leave(request: SignedInRequest, membership: Membership) -> HttpResponse:
    try:
        services.membership_leave(member=membership, request=request)
    except ToolportError as error:
        messages.error(request, error.message)
        return redirect(_section_url(membership, "settings"))
    request.session.pop(SESSION_WORKSPACE, None)
    messages.success(request, f"You left {membership.workspace.name}.")
    return redirect("console:home")


@require_POST
@workspace_page
def invitation_create(request: SignedInRequest, membership: Membership) -> HttpResponse:
    form = InvitationForm(request.POST)
    email = request.POST.get("email", "")
    role = form.cleaned_data["role"] if form.is_valid() else request.POST.get("role", Role.MEMBER)
    return _act(
        request,
        lambda: services.invitation_create(actor=membership, email=email, role=role, request=request),
        f"Invitation sent to {email}.",
        _section_url(membership, "settings"),
    )


@require_POST
@workspace_page
def invitation_revoke(request: SignedInRequest, membership: Membership, invitation_id: Any) -> HttpResponse:
    def revoke() -> None:
        invitation = selectors.invitation_get(workspace=membership.workspace, invitation_id=invitation_id)
        services.invitation_revoke(actor=membership, invitation=invitation, request=request)

    return _act(request, revoke, "Invitation revoked.", _section_url(membership, "settings"))


@never_cache
def invitation_accept(request: HttpRequest, token: str) -> HttpResponse:
    """The page an invitation link opens: who invites you where, and a button to join (after signing in)."""
    try:
        invitation = services.invitation_from_token(token=token)
    except ToolportError as error:
        return render(request, "accounts/invitation.html", {"error": error.message, "title": "Invitation"}, status=400)
    if request.method == "POST" and request.user.is_authenticated:
        try:
            joined = services.invitation_accept(token=token, user=request.user, request=request)
        except ToolportError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, f"You joined {joined.workspace.name}.")
            return redirect("console:dashboard", joined.workspace_id)
    return render(request, "accounts/invitation.html", {"invitation": invitation, "title": "Invitation"})


# --- API keys -------------------------------------------------------------------------------------------------------


def _key_page(request: SignedInRequest, membership: Membership, form: ApiKeyForm, status: int = 200) -> HttpResponse:
    context = {
        "title": "API keys",
        "section": "api-keys",
        "form": form,
        "rotate_form": ApiKeyRotateForm(),
        "keys": selectors.api_key_list(workspace=membership.workspace),
        "can_manage": membership.role_rank >= Role.ADMIN.rank,
    }
    context["panels"] = navigation.key_panels(request, membership.workspace_id, context["keys"])
    return render(request, "accounts/api_keys.html", context, status=status)


def _key_created(request: SignedInRequest, issued: api_keys.IssuedKey, heading: str) -> HttpResponse:
    """The one page that ever shows a full key: rendered in the POST's response and never cached or stored."""
    panels = navigation.key_panels(request, issued.key.workspace_id, [issued.key], issued.secret)
    response = render(
        request,
        "accounts/api_key_created.html",
        {"title": "API keys", "section": "api-keys", "issued": issued, "heading": heading, "panels": panels},
    )
    response["Cache-Control"] = "no-store"
    return response


@never_cache
@workspace_page
def api_key_list(request: SignedInRequest, membership: Membership) -> HttpResponse:
    if request.method != "POST":
        return _key_page(request, membership, ApiKeyForm())
    form = ApiKeyForm(request.POST)
    if not form.is_valid():
        return _key_page(request, membership, form, status=400)
    try:
        issued = api_keys.api_key_issue(actor=membership, request=request, **form.cleaned_data)
    except ToolportError as error:
        field = error.details.get("field")
        if isinstance(field, str) and field in form.fields:
            form.add_error(field, error.message)
        else:
            messages.error(request, error.message)
        return _key_page(request, membership, form, status=400)
    return _key_created(request, issued, "Your new API key")


@require_POST
@workspace_page
def api_key_revoke(request: SignedInRequest, membership: Membership, key_id: Any) -> HttpResponse:
    def revoke() -> None:
        key = selectors.api_key_get(workspace=membership.workspace, key_id=key_id)
        api_keys.api_key_revoke(actor=membership, key=key, request=request)

    return _act(
        request, revoke, "Key revoked. Programs using it are refused from now on.", _section_url(membership, "api_keys")
    )


@require_POST
@workspace_page
def api_key_rotate(request: SignedInRequest, membership: Membership, key_id: Any) -> HttpResponse:
    form = ApiKeyRotateForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The grace period must be between 0 minutes and 30 days.")
        return redirect(_section_url(membership, "api_keys"))
    try:
        key = selectors.api_key_get(workspace=membership.workspace, key_id=key_id)
        issued = api_keys.api_key_rotate(
            actor=membership, key=key, grace=timedelta(minutes=form.cleaned_data["grace_minutes"]), request=request
        )
    except NotFound as error:
        raise Http404(error.message) from error
    except ToolportError as error:
        messages.error(request, error.message)
        return redirect(_section_url(membership, "api_keys"))
    return _key_created(request, issued, "Your rotated API key")
