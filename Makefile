# Makefile: build, install and uninstall zk-states as a C library.
#
#   make                                  cargo build --release
#   make install [PREFIX=/usr/local] [DESTDIR=]
#   make uninstall [PREFIX=...] [DESTDIR=]
#   make demo | test | examples | clean
#
# `make install` copies what `make` built (it runs cargo only when the
# libraries are missing), so `make && sudo make install` never runs cargo as
# root. It installs:
#
#   $(LIBDIR)/libzk_states.so.X.Y.Z       the shared library (real file)
#   $(LIBDIR)/libzk_states.so.SOVERSION   -> libzk_states.so.X.Y.Z (the soname)
#   $(LIBDIR)/libzk_states.so             -> libzk_states.so.SOVERSION
#   $(LIBDIR)/libzk_states.a              the static library
#   $(INCLUDEDIR)/zk_states.h
#   $(PKGCONFIGDIR)/zk_states.pc
#   $(CMAKEDIR)/zk_statesConfig.cmake, zk_statesConfigVersion.cmake
#
# SOVERSION follows cargo-c (and build.rs, which sets the soname): the major
# version, or 0.MINOR before 1.0. The version comes from Cargo.toml only.

CARGO ?= cargo
INSTALL ?= install
PREFIX ?= /usr/local
DESTDIR ?=
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
CMAKEDIR ?= $(LIBDIR)/cmake/zk_states

TARGET_DIR ?= $(if $(CARGO_TARGET_DIR),$(CARGO_TARGET_DIR),target)
RELEASE_DIR := $(TARGET_DIR)/release
GEN_DIR := $(TARGET_DIR)/packaging

# --- version, from the [package] table of Cargo.toml -------------------------
VERSION := $(shell sed -n '/^\[package\]/,/^\[/s/^version[ \t]*=[ \t]*"\([^"]*\)".*/\1/p' Cargo.toml | head -n 1)
ifeq ($(VERSION),)
$(error cannot read the package version from Cargo.toml)
endif
_VERSION_CORE := $(firstword $(subst -, ,$(subst +, ,$(VERSION))))
VERSION_MAJOR := $(word 1,$(subst ., ,$(_VERSION_CORE)))
VERSION_MINOR := $(word 2,$(subst ., ,$(_VERSION_CORE)))
VERSION_PATCH := $(word 3,$(subst ., ,$(_VERSION_CORE)))
SOVERSION := $(if $(filter 0,$(VERSION_MAJOR)),0.$(VERSION_MINOR),$(VERSION_MAJOR))

LIB_REAL := libzk_states.so.$(VERSION)
LIB_SONAME := libzk_states.so.$(SOVERSION)
SHARED_BUILT := $(RELEASE_DIR)/libzk_states.so
STATIC_BUILT := $(RELEASE_DIR)/libzk_states.a
HEADER := include/zk_states.h

# Paths written into the installed metadata. pkg-config gets them relative to
# ${prefix} where possible (so `pkg-config --define-prefix` can relocate it);
# the CMake files locate everything relative to their own directory.
PC_LIBDIR := $(patsubst $(PREFIX)/%,$${prefix}/%,$(patsubst $(PREFIX),$${prefix},$(LIBDIR)))
PC_INCLUDEDIR := $(patsubst $(PREFIX)/%,$${prefix}/%,$(patsubst $(PREFIX),$${prefix},$(INCLUDEDIR)))
relpath = $(shell realpath -m -s --relative-to='$(1)' '$(2)')
POINTER_BYTES := $(shell expr "$$(getconf LONG_BIT 2>/dev/null || echo 64)" / 8)

SUBST = sed -e 's|@VERSION@|$(VERSION)|g' \
	-e 's|@VERSION_MAJOR@|$(VERSION_MAJOR)|g' \
	-e 's|@VERSION_MINOR@|$(VERSION_MINOR)|g' \
	-e 's|@VERSION_PATCH@|$(VERSION_PATCH)|g' \
	-e 's|@SOVERSION@|$(SOVERSION)|g' \
	-e 's|@PREFIX@|$(PREFIX)|g' \
	-e 's|@PC_LIBDIR@|$(PC_LIBDIR)|g' \
	-e 's|@PC_INCLUDEDIR@|$(PC_INCLUDEDIR)|g' \
	-e 's|@CMAKE_REL_LIBDIR@|$(call relpath,$(CMAKEDIR),$(LIBDIR))|g' \
	-e 's|@CMAKE_REL_INCLUDEDIR@|$(call relpath,$(CMAKEDIR),$(INCLUDEDIR))|g' \
	-e 's|@POINTER_BYTES@|$(POINTER_BYTES)|g'

.PHONY: all build install uninstall demo test examples clean version packaging-files

all: build

build:
	$(CARGO) build --release

# Only when missing: `make install` must not rebuild (possibly as root).
$(SHARED_BUILT) $(STATIC_BUILT):
	$(CARGO) build --release

version:
	@echo $(VERSION)

packaging-files:
	@mkdir -p $(GEN_DIR)
	$(SUBST) packaging/zk_states.pc.in > $(GEN_DIR)/zk_states.pc
	$(SUBST) packaging/zk_statesConfig.cmake.in > $(GEN_DIR)/zk_statesConfig.cmake
	$(SUBST) packaging/zk_statesConfigVersion.cmake.in > $(GEN_DIR)/zk_statesConfigVersion.cmake

install: $(SHARED_BUILT) $(STATIC_BUILT) packaging-files
	$(INSTALL) -d -m 0755 '$(DESTDIR)$(LIBDIR)' '$(DESTDIR)$(INCLUDEDIR)' \
		'$(DESTDIR)$(PKGCONFIGDIR)' '$(DESTDIR)$(CMAKEDIR)'
	$(INSTALL) -m 0755 $(SHARED_BUILT) '$(DESTDIR)$(LIBDIR)/$(LIB_REAL)'
	ln -sf $(LIB_REAL) '$(DESTDIR)$(LIBDIR)/$(LIB_SONAME)'
	ln -sf $(LIB_SONAME) '$(DESTDIR)$(LIBDIR)/libzk_states.so'
	$(INSTALL) -m 0644 $(STATIC_BUILT) '$(DESTDIR)$(LIBDIR)/libzk_states.a'
	$(INSTALL) -m 0644 $(HEADER) '$(DESTDIR)$(INCLUDEDIR)/zk_states.h'
	$(INSTALL) -m 0644 $(GEN_DIR)/zk_states.pc '$(DESTDIR)$(PKGCONFIGDIR)/zk_states.pc'
	$(INSTALL) -m 0644 $(GEN_DIR)/zk_statesConfig.cmake $(GEN_DIR)/zk_statesConfigVersion.cmake \
		'$(DESTDIR)$(CMAKEDIR)/'

uninstall:
	rm -f '$(DESTDIR)$(LIBDIR)/$(LIB_REAL)' '$(DESTDIR)$(LIBDIR)/$(LIB_SONAME)' \
		'$(DESTDIR)$(LIBDIR)/libzk_states.so' '$(DESTDIR)$(LIBDIR)/libzk_states.a' \
		'$(DESTDIR)$(INCLUDEDIR)/zk_states.h' '$(DESTDIR)$(PKGCONFIGDIR)/zk_states.pc' \
		'$(DESTDIR)$(CMAKEDIR)/zk_statesConfig.cmake' \
		'$(DESTDIR)$(CMAKEDIR)/zk_statesConfigVersion.cmake'
	-rmdir '$(DESTDIR)$(CMAKEDIR)' 2>/dev/null || true

demo:
	scripts/demo

test:
	scripts/test-all

examples:
	@if [ -f examples-c/Makefile ]; then \
		$(MAKE) -C examples-c; \
	else \
		echo "examples-c/Makefile not present: no examples to build"; \
	fi

# Removes the build products, not target/venv (the test environment).
clean:
	$(CARGO) clean --release
	$(CARGO) clean --profile dev
	rm -rf $(GEN_DIR) $(TARGET_DIR)/examples
	@if [ -f examples-c/Makefile ]; then $(MAKE) -C examples-c clean; fi
