from django.urls import path

from billing import views

console_patterns = [
    path("w/<uuid:workspace_id>/billing/", views.billing_page, name="billing"),
    path("w/<uuid:workspace_id>/billing/checkout/<slug:tier>/", views.checkout, name="billing_checkout"),
    path("w/<uuid:workspace_id>/billing/portal/", views.portal, name="billing_portal"),
]
