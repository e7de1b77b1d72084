# guest/guest.mk - make guest-image: the golden desktop VM image
# ($(BUILD)/images/desktop.qcow2), built with mmdebstrap from Debian's
# packages (guest/README.md).
GUEST_IMAGE := $(BUILD)/images/desktop.qcow2

guest-image: $(GUEST_IMAGE)

$(GUEST_IMAGE):
	@echo "guest-image: not written yet" >&2; exit 1

.PHONY: guest-image
