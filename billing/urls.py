from django.urls import path

from billing import views

console_patterns = [
    path("w/<uuid:workspace_id>/billing/", views.billing_page, name="billing"),
]
