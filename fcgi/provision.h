/* provision.h - placeholder while it is being written. */
