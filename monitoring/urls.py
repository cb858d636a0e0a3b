from django.urls import path

from monitoring import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", views.metrics, name="metrics"),
    path("stats", views.stats, name="stats"),
    path("capabilities", views.capabilities, name="capabilities"),
]
