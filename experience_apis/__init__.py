"""The experience tier: process and system data reshaped for one consumer each. No business rule lives here."""
