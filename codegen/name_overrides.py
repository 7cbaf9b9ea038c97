"""Names the heuristics in :mod:`codegen.catalog` get wrong, pinned so they survive spec updates.

``NAME_OVERRIDES`` maps a default name to the name to use. For a top-level schema the key is the
default root name (``CreateEntityResponse``); for a nested one it is the parent's final name plus
the property label (``CustomerDataBillingControls``), which is unique because parent names are.
``VARIANT_NAMES`` names the object options of a union (``"<Parent><Label>[<index>]"``), which the
parent name alone cannot tell apart.
"""

from __future__ import annotations

NAME_OVERRIDES: dict[str, str] = {
    # One response shape shared by several operations is named after what it is.
    "CreateFeatureResponse": "Feature",
    "CreateEntityResponse": "Entity",
    "DeleteCustomerResponse": "SuccessResponse",
    "EventsListResponseItem": "Event",
    "EventsAggregateResponseItem": "EventsAggregatePeriod",
    "VercelWebhooksEventEvent": "VercelWebhooksEvent",
    # A feature's unit names and credit costs, first met under Plan.items[].feature.
    "PlanItemFeatureDisplay": "FeatureUnitNames",
    "PlanItemFeatureCreditSchema": "CreditSchemaEntry",
    # Billing controls: the request side (customer data) and the response side (customer).
    "CustomerDataBillingControls": "BillingControlsParams",
    "BillingControlsParamsAutoTopup": "AutoTopup",
    # The request side's purchase limit (the response side's variants are named below).
    "AutoTopupPurchaseLimit": "AutoTopupPurchaseLimitParams",
    "BillingControlsParamsSpendLimit": "SpendLimit",
    "BillingControlsParamsUsageAlert": "UsageAlert",
    "BillingControlsParamsOverageAllowed": "OverageAllowed",
    "BillingControlsParamsUsageLimit": "UsageLimit",
    "CustomerDataConfig": "CustomerConfig",
    "CustomerBillingControls": "BillingControls",
    "BillingControlsAutoTopup": "AutoTopupStatus",
    "MultiAttachParamsEntityData": "EntityData",
    "EntityDataBillingControls": "EntityBillingControlsParams",
    # Plan items as sent in requests (the response side is PlanItem).
    "CreatePlanParamsItem": "PlanItemParams",
    "PlanItemParamsPrice": "PlanItemPriceParams",
    "PlanItemParamsRollover": "PlanItemRolloverParams",
    "CreateSchedulePhasePlanCustomizeItem": "SchedulePlanItemParams",
    "SchedulePlanItemParamsPrice": "SchedulePlanItemPriceParams",
    "CreateScheduleResponsePhase": "ScheduledPhase",
    # Webhook payload parts, named for what they are rather than the event path.
    "BalancesUsageAlertTriggeredDataUsageAlert": "TriggeredUsageAlert",
    "BillingAutoTopupSucceededDataInvoice": "AutoTopupInvoice",
    "BillingUpdatedDataPlanChange": "PlanChange",
    "PlanChangeItemChange": "PlanItemChange",
    "PlanChangePlanChangeItemChange": "PlanItemChange",
    # Names kept from the 2026-05-20 spec, whose shapes are now first met elsewhere.
    "PlanVariantDetailsCustomizeAddItemProration": "PlanItemProration",
    "PlanVariantDetailsCustomizeAddItemRollover": "PlanItemRolloverParams",
    "CustomerInvoicePreviewLineItem": "PreviewAttachLineItem",
    "PreviewAttachLineItemDiscount": "PreviewAttachLineItemDiscount",
    "CustomerInvoicePreviewLineItemDiscount": "PreviewAttachLineItemDiscount",
    "CustomerInvoicePreviewLineItemPeriod": "PreviewAttachLineItemPeriod",
    "ListCustomersParamsCreatedAtRange": "EventsListCustomRange",
    "VercelResourcesProvisionedDataResource": "VercelResource",
    # Names kept from before the official SDK's arguments (x-official-arguments) met these shapes first.
    "AttachAddLine": "CreateInvoiceCustomLineItem",
    "AttachTaxAutomaticTax": "UpdateSubscriptionRecalculateBalances",
    "GetOrCreateCustomerBillingDetailsTaxIdsAdd": "ReissueInvoiceCustomerTaxId",
    "GetOrCreateCustomerBillingDetailsInvoiceSettingsCustomField": "ReissueInvoiceInvoiceCustomField",
}

VARIANT_NAMES: dict[str, str] = {
    # Customer.billing_controls.auto_topups[].purchase_limit is either the configured limit or the
    # live window (count, next reset).
    "AutoTopupStatusPurchaseLimit[0]": "AutoTopupPurchaseLimit",
    "AutoTopupStatusPurchaseLimit[1]": "AutoTopupPurchaseWindow",
    # billing.verify (spec/autumn-sdk-1.2.0-operations.yml): one variant per mismatch ``type``.
    "VerifyResponseCustomerMismatch[0]": "VerifyBasePriceMismatch",
    "VerifyResponseCustomerMismatch[1]": "VerifyItemMismatch",
    "VerifyResponseCustomerMismatch[2]": "VerifyPrepaidQuantityMismatch",
    "VerifyResponseCustomerMismatch[3]": "VerifyPrepaidPriceMismatch",
    "VerifyResponseCustomerMismatch[4]": "VerifyScheduleMismatch",
    "VerifyResponseCustomerMismatch[5]": "VerifyCancelStateMismatch",
    "VerifyResponseCustomerMismatch[6]": "VerifyRewardMismatch",
    "VerifyResponseCustomerMismatch[7]": "VerifyStripeSubNotInAutumn",
    "VerifyResponseCustomerMismatch[8]": "VerifyPlanOnEndingSubscription",
    "VerifyResponseCustomerMismatch[9]": "VerifyStaleSubscriptionLink",
    "VerifyResponseCustomerMismatch[10]": "VerifyExpectedStateError",
    "VerifyResponseCustomerMismatch[11]": "VerifySharedStripeCustomer",
    # webhooks.preview_sync: one variant per change ``action``.
    "PreviewSyncWebhooksResponseChange[0]": "WebhookSyncCreate",
    "PreviewSyncWebhooksResponseChange[1]": "WebhookSyncUpdate",
    "PreviewSyncWebhooksResponseChange[2]": "WebhookSyncAdopt",
    "PreviewSyncWebhooksResponseChange[3]": "WebhookSyncUnmanaged",
    "PreviewSyncWebhooksResponseChange[4]": "WebhookSyncDelete",
    # invoices.create: a credit cost that is flat or tiered, overall or per dimension match.
    "CreateInvoicePlanCustomizeItemFeatureOverrideCreditSchema[0]": "InvoiceCreditSchemaFlat",
    "CreateInvoicePlanCustomizeItemFeatureOverrideCreditSchema[1]": "InvoiceCreditSchemaTiered",
    "InvoiceCreditSchemaFlatDimension[0]": "InvoiceCreditDimensionFlat",
    "InvoiceCreditSchemaFlatDimension[1]": "InvoiceCreditDimensionTiered",
    "InvoiceCreditSchemaTieredDimension[0]": "InvoiceCreditDimensionFlat",
    "InvoiceCreditSchemaTieredDimension[1]": "InvoiceCreditDimensionTiered",
}
