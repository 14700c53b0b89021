# install-paths.cmake — at install time, the absolute directories the installed files
# must name: CMAKE_INSTALL_PREFIX is then the prefix given to `cmake --install --prefix`
# (without DESTDIR, which only stages the files), not the configured one.
function(mailret_install_paths bindir docdir)
  foreach(v bindir docdir)
    if(NOT IS_ABSOLUTE "${${v}}")
      set(${v} "${CMAKE_INSTALL_PREFIX}/${${v}}")
    endif()
  endforeach()
  set(MAILRET_BINDIR "${bindir}" PARENT_SCOPE)
  set(MAILRET_DOCDIR "${docdir}" PARENT_SCOPE)
endfunction()
