# Run by `cmake --install`: installs the job scripts and the environment-modules file
# with the installation prefix written into them, so the installed scripts find the
# installed binary and sweeps (REGMIX_SOURCE_DIR, REGMIX_BINARY_DIR, REGMIX_SHARE_DIR and
# REGMIX_VERSION are set by CMakeLists.txt before this script runs).
get_filename_component(prefix "${CMAKE_INSTALL_PREFIX}" ABSOLUTE)
set(staged "${REGMIX_BINARY_DIR}/install-staged")
file(MAKE_DIRECTORY "${staged}")

foreach(script slurm-sweep.sbatch pbs-sweep.pbs)
  file(READ "${REGMIX_SOURCE_DIR}/jobscripts/${script}" text)
  string(REPLACE "REGMIX_PREFIX=\"\"   #" "REGMIX_PREFIX=\"${prefix}\"   #" text "${text}")
  if(NOT text MATCHES "REGMIX_PREFIX=\"${prefix}\"")
    message(FATAL_ERROR "jobscripts/${script}: no REGMIX_PREFIX=\"\" line to fill in")
  endif()
  file(WRITE "${staged}/${script}" "${text}")
  file(INSTALL DESTINATION "${CMAKE_INSTALL_PREFIX}/${REGMIX_SHARE_DIR}/jobscripts" TYPE PROGRAM
       FILES "${staged}/${script}")
endforeach()

file(READ "${REGMIX_SOURCE_DIR}/jobscripts/regmix.modulefile" text)
string(REGEX REPLACE "\nset prefix [^\n]*" "\nset prefix {${prefix}}" text "${text}")
string(REGEX REPLACE "\nset version [^\n]*" "\nset version ${REGMIX_VERSION}" text "${text}")
file(WRITE "${staged}/${REGMIX_VERSION}" "${text}")
file(INSTALL DESTINATION "${CMAKE_INSTALL_PREFIX}/${REGMIX_SHARE_DIR}/modulefiles/regmix" TYPE FILE
     FILES "${staged}/${REGMIX_VERSION}")
