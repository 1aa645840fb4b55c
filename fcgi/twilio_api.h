/* twilio_api.h - placeholder while it is being written. */
