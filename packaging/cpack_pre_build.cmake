# CPack pre-build script (CPACK_PRE_BUILD_SCRIPTS): runs on the staging
# tree after `cmake --install` filled it and before the .deb is made.
# Adds what only the package has: /etc/herd/herd.json (a conffile, see
# conffiles), the unit under /lib/systemd/system (where Debian 12's
# lintian wants it), the changelog and copyright every Debian package
# carries, and lintian's override for the statically linked herd-logger.
set(_src "@PROJECT_SOURCE_DIR@/packaging")
# The staging root is the directory that holds usr/share/doc/herd.
set(_root "")
foreach(top IN ITEMS "${CPACK_TEMPORARY_INSTALL_DIRECTORY}" "${CPACK_TEMPORARY_DIRECTORY}"
                     "${CPACK_TOPLEVEL_DIRECTORY}")
  if(top AND IS_DIRECTORY "${top}")
    file(GLOB_RECURSE _docs "${top}/*/share/doc/herd/operations.md")
    foreach(d IN LISTS _docs)
      string(REGEX REPLACE "/usr/share/doc/herd/operations.md$" "" _root "${d}")
      break()
    endforeach()
  endif()
  if(_root)
    break()
  endif()
endforeach()
if(NOT _root OR NOT IS_DIRECTORY "${_root}/usr")
  message(FATAL_ERROR "cpack_pre_build: no staging tree with usr/share/doc/herd found")
endif()
message(STATUS "cpack_pre_build: staging root ${_root}")
file(COPY "${_src}/herd.json" DESTINATION "${_root}/etc/herd"
     FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
file(MAKE_DIRECTORY "${_root}/lib/systemd/system")
file(RENAME "${_root}/usr/lib/systemd/system/herd.service"
     "${_root}/lib/systemd/system/herd.service")
file(REMOVE_RECURSE "${_root}/usr/lib/systemd")
file(GLOB _usr_lib "${_root}/usr/lib/*")
if(NOT _usr_lib)
  file(REMOVE_RECURSE "${_root}/usr/lib")
endif()
file(COPY "${_src}/copyright" DESTINATION "${_root}/usr/share/doc/herd"
     FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
execute_process(COMMAND gzip -9n -c "${_src}/changelog.Debian"
                OUTPUT_FILE "${_root}/usr/share/doc/herd/changelog.gz"
                RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "cpack_pre_build: gzip failed")
endif()
file(CHMOD "${_root}/usr/share/doc/herd/changelog.gz"
     PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
file(MAKE_DIRECTORY "${_root}/usr/share/lintian/overrides")
file(COPY_FILE "${_src}/lintian-overrides" "${_root}/usr/share/lintian/overrides/herd")
file(CHMOD "${_root}/usr/share/lintian/overrides/herd"
     PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
