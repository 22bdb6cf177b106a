"""What every channel needs besides its own platform: one piece per concern, used by Slack, Teams
and the console alike (rule of thumb 1: channels only translate; the plumbing around the
translation is written once)."""
