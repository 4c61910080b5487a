"""Shannon's ``/api/v1/schedules`` façade: routes (:mod:`.routes`), models (:mod:`.wire`)."""
