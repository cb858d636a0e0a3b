"""Identity and tenancy: users (email login), workspaces, memberships, invitations and API keys."""
