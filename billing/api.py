"""The billing REST API: plans, and a workspace's plan and quota use."""

from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api import MembershipView
from billing import quotas, selectors
from billing.serializers import BillingSerializer, PlanSerializer


class PlanListView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(summary="The public plans and their limits", responses=PlanSerializer(many=True))
    def get(self, request: Request) -> Response:
        return Response(PlanSerializer(selectors.plan_list_public(), many=True).data)


class BillingView(MembershipView):
    @extend_schema(summary="A workspace's plan, period and quota use", responses=BillingSerializer)
    def get(self, request: Request, workspace_id: str) -> Response:
        membership = self.membership()
        account = quotas.billing_account_get(workspace_id=membership.workspace_id)
        policy = quotas.quota_policy(workspace_id=membership.workspace_id)
        data = {
            "plan": account.plan,
            "status": account.status,
            "period_start": policy.period_start,
            "period_end": policy.period_end,
            "usage": quotas.quota_usage(workspace_id=membership.workspace_id),
        }
        return Response(BillingSerializer(data).data)
