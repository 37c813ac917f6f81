"""What residents are told: the inbox, text messages, event reminders (SPEC §4.8)."""
