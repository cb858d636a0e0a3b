import pytest

from accounts.models import User
from accounts.services import demo_staff_user_ensure


@pytest.mark.django_db
def test_demo_staff_user_gets_a_password_once_and_keeps_it():
    first = demo_staff_user_ensure(email="admin@toolport.localhost")
    again = demo_staff_user_ensure(email="ADMIN@toolport.localhost")

    assert first.password is not None
    assert len(first.password) >= 16
    assert again.password is None
    user = User.objects.get(email="admin@toolport.localhost")
    assert user.is_staff
    assert user.is_superuser
    assert user.check_password(first.password)


@pytest.mark.django_db
def test_users_sign_in_by_email_not_username():
    user = User.objects.create_user(email="Someone@Example.COM", password="a long passphrase")
    assert user.email == "Someone@example.com"  # the domain is normalised
    assert User.USERNAME_FIELD == "email"
    with pytest.raises(ValueError, match="email"):
        User.objects.create_user(email="", password="x")
