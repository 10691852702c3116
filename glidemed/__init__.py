"""glidemed: blinded expert rating studies of AI-generated medical images."""

__version__ = "0.1.0"
