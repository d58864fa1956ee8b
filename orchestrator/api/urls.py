"""The REST API's routes, included under /api/v1/ (docs/api.md).

Kestra's paths: several share a shape with another (`/executions/search` and
`/executions/{executionId}`, `/executions/{executionId}/restart` and
`/executions/{namespace}/{flowId}`), so the fixed words come first. `/executions/webhook/…` has
four segments and matches none of these.
"""

from django.urls import path
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularRedocView, SpectacularSwaggerView

from orchestrator.api import (
    bulk,
    executions,
    files,
    flows,
    follow,
    kv,
    logs,
    meta,
    namespace_files,
    namespaces,
    plugins,
    triggers,
)

urlpatterns = [
    path("version", meta.Version.as_view(), name="api-version"),
    path("workers", meta.Workers.as_view(), name="api-workers"),
    path("openapi.json", SpectacularJSONAPIView.as_view(), name="api-openapi"),
    path("swagger-ui", SpectacularSwaggerView.as_view(url_name="api-openapi"), name="api-swagger-ui"),
    path("redoc", SpectacularRedocView.as_view(url_name="api-openapi"), name="api-redoc"),
    # flows
    path("flows", flows.FlowCreate.as_view(), name="api-flow-create"),
    path("flows/search", flows.FlowSearch.as_view(), name="api-flow-search"),
    path("flows/validate", flows.FlowValidate.as_view(), name="api-flow-validate"),
    path("flows/import", bulk.FlowImport.as_view(), name="api-flow-import"),
    path("flows/bulk", bulk.FlowBulk.as_view(), name="api-flow-bulk"),
    path("flows/export/by-query", bulk.FlowExportByQuery.as_view(), name="api-flow-export-by-query"),
    path("flows/export/by-ids", bulk.FlowExportByIds.as_view(), name="api-flow-export-by-ids"),
    path("flows/<str:namespace>", bulk.NamespaceFlowsUpdate.as_view(), name="api-namespace-flows"),
    path("flows/<str:namespace>/<str:flow_id>", flows.FlowDetail.as_view(), name="api-flow"),
    path("flows/<str:namespace>/<str:flow_id>/revisions", flows.FlowRevisions.as_view(), name="api-flow-revisions"),
    path("plugins/schemas/flow", flows.FlowSchema.as_view(), name="api-flow-schema"),
    path("plugins", plugins.PluginList.as_view(), name="api-plugins"),
    path("plugins/<str:cls>", plugins.PluginDetail.as_view(), name="api-plugin"),
    # namespaces, their KV store and their files
    path("namespaces/search", namespaces.NamespaceSearch.as_view(), name="api-namespace-search"),
    path("namespaces/<str:namespace>", namespaces.NamespaceDetail.as_view(), name="api-namespace"),
    path("namespaces/<str:namespace>/kv", kv.KVList.as_view(), name="api-kv-list"),
    path("namespaces/<str:namespace>/kv/<str:key>", kv.KVDetail.as_view(), name="api-kv"),
    path("namespaces/<str:namespace>/files", namespace_files.NamespaceFiles.as_view(), name="api-namespace-files"),
    path("namespaces/<str:namespace>/files/directory", namespace_files.NamespaceDirectory.as_view(),
         name="api-namespace-files-directory"),
    path("namespaces/<str:namespace>/files/stats", namespace_files.NamespaceFileStats.as_view(),
         name="api-namespace-files-stats"),
    # executions
    path("executions/search", executions.ExecutionSearch.as_view(), name="api-execution-search"),
    path("executions/<str:execution_id>", executions.ExecutionDetail.as_view(), name="api-execution"),
    path("executions/<str:execution_id>/kill", executions.ExecutionKill.as_view(), name="api-execution-kill"),
    path("executions/<str:execution_id>/restart", executions.ExecutionRestart.as_view(),
         name="api-execution-restart"),
    path("executions/<str:execution_id>/replay", executions.ExecutionReplay.as_view(), name="api-execution-replay"),
    path("executions/<str:execution_id>/resume", executions.ExecutionResume.as_view(), name="api-execution-resume"),
    path("executions/<str:execution_id>/state", executions.ExecutionChangeState.as_view(),
         name="api-execution-state"),
    path("executions/<str:execution_id>/follow", follow.ExecutionFollow.as_view(), name="api-execution-follow"),
    path("executions/<str:execution_id>/file", files.ExecutionFile.as_view(), name="api-execution-file"),
    path("executions/<str:execution_id>/file/metas", files.ExecutionFileMetas.as_view(),
         name="api-execution-file-metas"),
    path("executions/<str:execution_id>/file/preview", files.ExecutionFilePreview.as_view(),
         name="api-execution-file-preview"),
    path("executions/<str:namespace>/<str:flow_id>", executions.ExecutionCreate.as_view(),
         name="api-execution-create"),
    # triggers: the fixed words first (`/triggers/unlock/by-query` has the shape of a flow's triggers)
    path("triggers", triggers.TriggerUpdate.as_view(), name="api-trigger-update"),
    path("triggers/search", triggers.TriggerSearch.as_view(), name="api-trigger-search"),
    path("triggers/backfill/pause", triggers.BackfillPause.as_view(), name="api-trigger-backfill-pause"),
    path("triggers/backfill/unpause", triggers.BackfillUnpause.as_view(), name="api-trigger-backfill-unpause"),
    path("triggers/backfill/delete", triggers.BackfillDelete.as_view(), name="api-trigger-backfill-delete"),
    path("triggers/backfill/pause/by-triggers", triggers.PauseByTriggers.as_view(),
         name="api-trigger-backfill-pause-by-triggers"),
    path("triggers/backfill/pause/by-query", triggers.PauseByQuery.as_view(), name="api-trigger-backfill-pause-by-query"),
    path("triggers/backfill/unpause/by-triggers", triggers.UnpauseByTriggers.as_view(),
         name="api-trigger-backfill-unpause-by-triggers"),
    path("triggers/backfill/unpause/by-query", triggers.UnpauseByQuery.as_view(),
         name="api-trigger-backfill-unpause-by-query"),
    path("triggers/backfill/delete/by-triggers", triggers.DeleteBackfillByTriggers.as_view(),
         name="api-trigger-backfill-delete-by-triggers"),
    path("triggers/backfill/delete/by-query", triggers.DeleteBackfillByQuery.as_view(),
         name="api-trigger-backfill-delete-by-query"),
    path("triggers/set-disabled/by-triggers", triggers.SetDisabledByTriggers.as_view(),
         name="api-trigger-set-disabled-by-triggers"),
    path("triggers/set-disabled/by-query", triggers.SetDisabledByQuery.as_view(),
         name="api-trigger-set-disabled-by-query"),
    path("triggers/unlock/by-triggers", triggers.UnlockByTriggers.as_view(), name="api-trigger-unlock-by-triggers"),
    path("triggers/unlock/by-query", triggers.UnlockByQuery.as_view(), name="api-trigger-unlock-by-query"),
    path("triggers/<str:namespace>/<str:flow_id>", triggers.FlowTriggers.as_view(), name="api-flow-triggers"),
    path("triggers/<str:namespace>/<str:flow_id>/<str:trigger_id>/unlock", triggers.TriggerUnlock.as_view(),
         name="api-trigger-unlock"),
    path("triggers/<str:namespace>/<str:flow_id>/<str:trigger_id>/restart", triggers.TriggerRestart.as_view(),
         name="api-trigger-restart"),
    # logs
    path("logs/search", logs.LogSearch.as_view(), name="api-log-search"),
    path("logs/<str:execution_id>", executions.ExecutionLogs.as_view(), name="api-logs"),
    path("logs/<str:execution_id>/follow", follow.LogFollow.as_view(), name="api-logs-follow"),
    path("logs/<str:execution_id>/download", executions.ExecutionLogsDownload.as_view(), name="api-logs-download"),
]
