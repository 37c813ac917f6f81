"""Volunteer hours and their signed certificates (志愿服务时长证明, SPEC §4.15)."""
