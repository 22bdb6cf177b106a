"""The service desk's rules: tickets, prices, calendar, workflow, validation. No I/O."""
