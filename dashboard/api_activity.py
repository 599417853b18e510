"""Management API for a project's activity counts and grant timelines (issue 21).

`GET /api/v1/projects/{slug}/activity?range=24h|7d|30d`: the overview's numbers (`activity.queries`).
`GET /api/v1/projects/{slug}/grants?client_id=&subject=`: grants with their events and warnings
(`activity.timeline`), the dashboard's client and end-user pages for scripts.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions
from rest_framework.response import Response

from activity import queries, timeline

from .api import ManagementView


class ActivityView(ManagementView):
    @extend_schema(tags=["activity"], summary="Counts per hour (24h) or day (7d, 30d): tokens issued, "
                                              "authorizations, registrations, refused requests; totals, "
                                              "per client, failure reasons",
                   parameters=[OpenApiParameter("range", OpenApiTypes.STR, enum=list(queries.RANGES))],
                   responses=OpenApiTypes.OBJECT)
    def get(self, request, slug):
        project = self.project(slug)
        range_key = request.query_params.get("range", queries.DEFAULT_RANGE)
        if range_key not in queries.RANGES:
            raise exceptions.ValidationError(f"range must be one of {', '.join(queries.RANGES)}.")
        return Response(queries.summary(project, range_key).as_json())


class GrantsView(ManagementView):
    @extend_schema(tags=["activity"], summary="Grants (end user × client), most recently active first, each "
                                              "with its events in order and warnings",
                   parameters=[OpenApiParameter("client_id", OpenApiTypes.STR),
                               OpenApiParameter("subject", OpenApiTypes.STR, description="the end user's sub")],
                   responses=OpenApiTypes.OBJECT)
    def get(self, request, slug):
        project = self.project(slug)
        found = timeline.grants(project, client_id=request.query_params.get("client_id", "").strip(),
                                subject=request.query_params.get("subject", "").strip())
        return Response({"results": [grant.as_json() for grant in found], "count": len(found)})
