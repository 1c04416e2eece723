"""What leaves the mart each night: the CRM write-back (:mod:`pipelines.outbound.crm`) and the
alerts (:mod:`pipelines.outbound.alerts`), configured in one file (:mod:`pipelines.outbound.config`,
``config/outbound.yml``; docs/outbound.md)."""
