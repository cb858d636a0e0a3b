from django.urls import path

from billing import api

urlpatterns = [
    path("workspaces/<str:workspace_id>/billing/", api.BillingView.as_view(), name="billing"),
    path("plans/", api.PlanListView.as_view(), name="plan-list"),
]
