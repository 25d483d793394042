"""Read models built from the event log, one slice per read model (`rows`: tables and typed rows,
`handlers`: events → rows, `queries`: answers as of any instant); `ports` says what they need from outside
(a store, a way to open seals) and `read_model` / `tables` are the batch machinery they share."""
