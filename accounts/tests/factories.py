"""Factories for accounts: users with verified emails, workspaces with an owner, members, keys."""

import factory
from allauth.account.models import EmailAddress

from accounts import api_keys
from accounts.models import Membership, Role, User, Workspace

PASSWORD = "correct horse battery staple"


class UserFactory(factory.django.DjangoModelFactory[User]):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"person{n}@example.com")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def verified(obj: User, create: bool, extracted: object, **kwargs: object) -> None:
        if create:
            obj.save()
            EmailAddress.objects.create(user=obj, email=obj.email, verified=True, primary=True)


class WorkspaceFactory(factory.django.DjangoModelFactory[Workspace]):
    class Meta:
        model = Workspace

    name = factory.Sequence(lambda n: f"Workspace {n}")


class MembershipFactory(factory.django.DjangoModelFactory[Membership]):
    class Meta:
        model = Membership

    workspace = factory.SubFactory(WorkspaceFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.MEMBER


def workspace_with(*roles: str) -> tuple[Workspace, list[Membership]]:
    """A workspace with one member per role given, in that order."""
    workspace = WorkspaceFactory.create()
    return workspace, [MembershipFactory.create(workspace=workspace, role=role) for role in roles]


def issue_key(membership: Membership, **scopes) -> api_keys.IssuedKey:
    return api_keys.api_key_issue(actor=membership, name=scopes.pop("name", "test key"), **scopes)
