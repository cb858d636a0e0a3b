"""Create the local demo data: a staff user whose password is printed once, on the run that creates it."""

from django.core.management.base import BaseCommand

from accounts.services import demo_staff_user_ensure


class Command(BaseCommand):
    help = "Create the demo staff user (idempotent); prints its password only when it is created."

    def add_arguments(self, parser):
        parser.add_argument("--email", default="admin@toolport.localhost")

    def handle(self, *args, email: str, **options):
        staff = demo_staff_user_ensure(email=email)
        if staff.password:
            self.stdout.write(
                self.style.SUCCESS("Demo staff user created. This password is shown once; keep it:")
                + f"\n    email:    {staff.email}\n    password: {staff.password}\n"
            )
        else:
            self.stdout.write(
                f"Demo staff user {staff.email} exists (its password was printed on the first run; "
                f"reset it with `make manage ARGS='changepassword {staff.email}'`)."
            )
