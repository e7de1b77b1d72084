# guest/guest.mk - make guest-image: the golden desktop VM image
# ($(BUILD)/images/desktop.qcow2), built with mmdebstrap from Debian's
# packages (guest/README.md). Built again only when a file of guest/ that
# goes into it changes; build-image.sh writes it atomically.
GUEST_IMAGE := $(BUILD)/images/desktop.qcow2
GUEST_INPUTS := guest/guest.mk guest/build-image.sh guest/customize.sh \
	$(shell find guest/files -type f 2>/dev/null)

guest-image: $(GUEST_IMAGE)

$(GUEST_IMAGE): $(GUEST_INPUTS)
	guest/build-image.sh $@

.PHONY: guest-image
