# pl_library(): how every library of this tree is declared, so that its
# include scope is written down next to it.
#
#   pl_library(NAME [INTERFACE]
#              SOURCES a.c b.c ...
#              HEADERS a.h ...          # public headers, included as "<folder>/a.h"
#              PUBLIC  dep ...          # libraries its public headers expose
#              PRIVATE dep ...)         # libraries only its .c files use
#
# A library's public headers are linked into an include directory of its own
# (build/include/NAME/<folder>/x.h) and only that directory is put on the
# include path of the library and of whoever links it. So a file can include
# the public headers of the libraries it links and nothing else: including
# another library's header without linking it, or any "*-internal.h" from
# outside its folder, does not compile. Internal headers are included by
# their bare name from the same folder ("store-internal.h").
function(pl_library name)
  cmake_parse_arguments(L "INTERFACE" "" "SOURCES;HEADERS;PUBLIC;PRIVATE" ${ARGN})
  file(RELATIVE_PATH folder ${PROJECT_SOURCE_DIR} ${CMAKE_CURRENT_SOURCE_DIR})
  set(inc ${PROJECT_BINARY_DIR}/include/${name})
  file(REMOVE_RECURSE ${inc})
  foreach(h ${L_HEADERS})
    if(h MATCHES "-internal\\.h$")
      message(FATAL_ERROR "${name}: ${h} is internal and cannot be a public header")
    endif()
    get_filename_component(sub ${folder}/${h} DIRECTORY)
    file(MAKE_DIRECTORY ${inc}/${sub})
    file(CREATE_LINK ${CMAKE_CURRENT_SOURCE_DIR}/${h} ${inc}/${folder}/${h} SYMBOLIC)
  endforeach()
  if(L_INTERFACE)
    add_library(${name} INTERFACE)
    target_include_directories(${name} INTERFACE ${inc})
    target_link_libraries(${name} INTERFACE ${L_PUBLIC})
  else()
    add_library(${name} STATIC ${L_SOURCES})
    target_include_directories(${name} PUBLIC ${inc})
    target_link_libraries(${name} PUBLIC ${L_PUBLIC} PRIVATE ${L_PRIVATE})
  endif()
endfunction()

# pl_tool(NAME SOURCES ... LIBS ...): a command-line tool, a thin main over
# its libraries; every binary lands in build/<dir>/bin/.
function(pl_tool name)
  cmake_parse_arguments(T "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS})
endfunction()
