# install() rules for `cmake --install build` (the CMake twin of
# image/install.sh). To use them, the top-level CMakeLists.txt adds, after
# the targets are defined:
#
#   include(image/install.cmake)
#
# Then, e.g.:
#   cmake --install build --prefix /usr/local          # as root
#   DESTDIR=/tmp/stage cmake --install build --prefix /usr
# Afterwards (as root, no DESTDIR): systemd-sysusers; systemctl daemon-reload;
# systemctl enable --now spamsink. image/install.sh does those steps itself.
include(GNUInstallDirs)

foreach(tool spamsink smtpsend)
  if(TARGET ${tool})
    install(TARGETS ${tool} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  endif()
endforeach()

# The unit names the installed paths; @...@ filled in at configure time.
set(BINDIR ${CMAKE_INSTALL_FULL_BINDIR})
set(SYSCONFDIR ${CMAKE_INSTALL_FULL_SYSCONFDIR})
set(DOCDIR ${CMAKE_INSTALL_FULL_DATAROOTDIR}/doc/spamsink)
foreach(unit spamsink.service spamsink@.service)
  configure_file(${CMAKE_CURRENT_LIST_DIR}/systemd/${unit}.in
                 ${CMAKE_BINARY_DIR}/image/${unit} @ONLY)
  install(FILES ${CMAKE_BINARY_DIR}/image/${unit}
          DESTINATION lib/systemd/system)
endforeach()
install(FILES ${CMAKE_CURRENT_LIST_DIR}/systemd/spamsink.sysusers
        DESTINATION lib/sysusers.d RENAME spamsink.conf)
install(FILES ${CMAKE_CURRENT_LIST_DIR}/systemd/spamsink.tmpfiles
        DESTINATION lib/tmpfiles.d RENAME spamsink.conf)

# The default config, never over an existing one (then beside it as .dist).
set(_spamsink_conf_src ${CMAKE_CURRENT_LIST_DIR}/spamsink.toml)
install(CODE "
  set(_dir \"\$ENV{DESTDIR}${CMAKE_INSTALL_FULL_SYSCONFDIR}/spamsink\")
  file(MAKE_DIRECTORY \"\${_dir}\")
  if(EXISTS \"\${_dir}/spamsink.toml\")
    message(STATUS \"Keeping \${_dir}/spamsink.toml; new default: spamsink.toml.dist\")
    file(COPY_FILE \"${_spamsink_conf_src}\" \"\${_dir}/spamsink.toml.dist\")
  else()
    message(STATUS \"Installing: \${_dir}/spamsink.toml\")
    file(COPY_FILE \"${_spamsink_conf_src}\" \"\${_dir}/spamsink.toml\")
    # 0640: it may hold the API token (group spamsink: see install.sh)
    file(CHMOD \"\${_dir}/spamsink.toml\" PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ)
  endif()
")

foreach(page spamsink.8 spamsink.toml.5 smtpsend.1)
  string(REGEX REPLACE ".*\\.([0-9])$" "\\1" _sect ${page})
  install(FILES ${CMAKE_SOURCE_DIR}/docs/${page}
          DESTINATION ${CMAKE_INSTALL_MANDIR}/man${_sect})
endforeach()

foreach(doc docs/DEPLOY.md docs/API.md docs/CONFIGURATION.md
            docs/OPERATIONS.md docs/TARPIT.md docs/SMTPSEND.md README.md
            LICENSE)
  if(EXISTS ${CMAKE_SOURCE_DIR}/${doc})
    install(FILES ${CMAKE_SOURCE_DIR}/${doc} DESTINATION ${CMAKE_INSTALL_DOCDIR})
  endif()
endforeach()
