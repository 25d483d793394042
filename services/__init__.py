"""The application layer: `CrmApplication` running typed `commands` on the event log, with its adapters
(`storage`, `keys`), the runtime of read models (`projection_runtime`), history in and out (`history`) and
the demo's sample data (`demo`). Imports domain and projections, never gateways."""
